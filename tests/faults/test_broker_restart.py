"""The broker is killed (SIGKILL) under load and restarted on persistent
storage, so the topic survives: Tansu's s3:// storage engine on a moto S3
server (its own process). This Tansu build has neither postgres nor sqlite
compiled in (FeatureNotEnabled), only memory and S3 ("dynostore").

While the broker is down, announces fill the pending bound and then get the
retry-later failure; after the restart the tracker catches up and the
per-user totals equal the ground truth exactly.
"""

from __future__ import annotations

import time

from harness import (Ledger, LoadDriver, close_stale_transactions, compare, establish, make_entries,
                     read_topic, report, settle, wait_until)

BROKER_PORT = 19494
S3_PORT = 19499


def test_broker_killed_and_restarted_on_persistent_storage(procs):
    s3 = procs.s3(S3_PORT)
    broker = procs.broker(BROKER_PORT, storage="s3://tansu/", extra_env=s3.broker_env())
    topic = "faults-restart"
    broker.create_topic(topic)
    tracker = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="restart",
                            accounting={"max_pending_deltas": 400, "max_pending_bytes": 256 << 10,
                                        "max_wait_s": 1, "shutdown_drain_timeout_s": 10})
    tracker.start()
    entries = make_entries(users=10, torrents=4, clients_per_user=3, seed=3)
    ledger = Ledger()
    establish(tracker, entries, ledger)

    load = LoadDriver(tracker, entries, ledger, workers=6).start()
    try:
        load.wait_accepted(300, timeout=60)
        killed_at = time.monotonic()
        broker.kill()
        accepted_at_kill = ledger.accepted_count()
        # Down until the bound is full and announces are turned away.
        wait_until(lambda: ledger.retry_later_latencies, 60, "retry-later while the broker is down",
                   on_timeout=tracker.describe)
        down_s = time.monotonic() - killed_at
        accepted_while_down = ledger.accepted_count() - accepted_at_kill
        broker.start()
        restarted_at = time.monotonic()
        load.wait_accepted(200, timeout=150)
        recovery_s = time.monotonic() - restarted_at
    finally:
        load.stop()
    settle(tracker, entries, ledger)
    rc = tracker.terminate(timeout=40)
    assert rc == 0, f"exit code {rc}\n{tracker.describe()}"
    close_stale_transactions(broker.bootstrap, tracker.transactional_id)

    contents = read_topic(broker.bootstrap, topic)
    truth = ledger.truth()
    diff = compare(truth, contents.totals())
    report("broker-killed-restarted-s3", down_s=f"{down_s:.2f}", accepted_while_down=accepted_while_down,
           recovery_s=f"{recovery_s:.2f}", accepted_announces=ledger.accepted_count(),
           records=contents.records, unique_deltas=len(contents.unique()), raw_duplicates=contents.duplicates,
           users_wrong=len(diff), failures=dict(ledger.failures))
    assert accepted_while_down <= 400 + 100_000, accepted_while_down
    assert diff == {}, f"per-user totals differ from the ledger: {diff}"
