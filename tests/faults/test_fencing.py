"""Two instances with the same kafka.transactional_id.

The second one's init_transactions fences the first: the fenced one stops
publishing, says so in its log and on /readyz (503, "fenced"), turns
announces away with retry-later once its bound is full, and loses nothing it
acknowledged: at SIGTERM its undelivered deltas go to its snapshot, and a
restart of that instance (once the other is gone) delivers them. Exact
per-user totals over both instances' users prove it.
"""

from __future__ import annotations

import re

from harness import (Ledger, LoadDriver, compare, establish, make_entries, read_topic, report, settle,
                     wait_until)

BROKER_PORT = 19496


def test_same_transactional_id_fences_the_first_and_loses_nothing(procs, tmp_path):
    broker = procs.broker(BROKER_PORT)
    topic = "faults-fencing"
    broker.create_topic(topic)
    shared_id = f"faults-fencing-{tmp_path.name}"
    small = {"max_pending_deltas": 200, "max_pending_bytes": 128 << 10, "max_wait_s": 0.5,
             "shutdown_drain_timeout_s": 3}
    first = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="first", accounting=small,
                          kafka={"transactional_id": shared_id})
    second = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="second", accounting=small,
                           kafka={"transactional_id": shared_id})
    first.start()
    first_entries = make_entries(users=6, torrents=3, clients_per_user=2, seed=51)
    second_entries = make_entries(users=6, torrents=3, clients_per_user=2, seed=52)
    ledger = Ledger()
    establish(first, first_entries, ledger)
    if first.admin_port:
        wait_until(lambda: first.admin_get("/readyz")[0] == 200, 10, "first instance ready")

    load = LoadDriver(first, first_entries, ledger, workers=4, seed=53).start()
    try:
        load.wait_accepted(200, timeout=60)
        second.start()  # its init_transactions fences the first
        fenced_line = first.wait_log("Kafka producer fenced", timeout=60)
        # Announces keep coming; the fenced instance fills its bound and turns them away.
        wait_until(lambda: ledger.retry_later_latencies, 60, "retry-later from the fenced instance",
                   on_timeout=first.describe)
    finally:
        load.stop()
    readyz = first.admin_get("/readyz") if first.admin_port else None
    if readyz is not None:
        assert readyz[0] == 503 and "fenced" in readyz[1], readyz

    # The second instance publishes normally.
    establish(second, second_entries, ledger)
    load2 = LoadDriver(second, second_entries, ledger, workers=3, seed=54).start()
    try:
        load2.wait_accepted(150, timeout=60)
    finally:
        load2.stop()
    settle(second, second_entries, ledger)

    rc_first = first.terminate(timeout=30)
    assert rc_first == 0, f"fenced instance exit code {rc_first}\n{first.describe()}"
    written = first.wait_log("accounting snapshot written", timeout=1)
    to_snapshot = int(re.search(r"pending_deltas=(\d+)", written).group(1))
    assert to_snapshot > 0, f"the fenced instance had undelivered deltas, yet its snapshot has none: {written}"
    assert "undelivered deltas" in first.log(), first.describe()
    rc_second = second.terminate(timeout=30)
    assert rc_second == 0, second.describe()

    # The fenced instance comes back (the other is gone) and delivers its snapshot.
    first.start()
    restored = first.wait_log("restored accounting snapshot", timeout=10)
    assert f"pending_deltas={to_snapshot}" in restored, restored
    settle(first, first_entries, ledger)
    rc = first.terminate(timeout=30)
    assert rc == 0, first.describe()

    contents = read_topic(broker.bootstrap, topic)
    truth = ledger.truth()
    diff = compare(truth, contents.totals())
    report("same-transactional-id", fenced_log="Kafka producer fenced", to_snapshot=to_snapshot,
           readyz=readyz[0] if readyz else "no admin port in this build", accepted=ledger.accepted_count(),
           records=contents.records, unique_deltas=len(contents.unique()), raw_duplicates=contents.duplicates,
           users_wrong=len(diff))
    assert diff == {}, f"per-user totals differ from the ledger: {diff}"
