"""Issue #5: SIGTERM in the middle of a stream of HTTP and UDP announces.

The tracker must exit 0 within its grace period, and every delta it accepted
must end up in Kafka or in its snapshot; a restart with the same config and
snapshot delivers the rest. Proven by exact per-user totals against the
ground-truth ledger (after dedupe by origin, the consumer contract).
"""

from __future__ import annotations

import re
import time

from harness import (Ledger, LoadDriver, compare, establish, make_entries, read_topic, report,
                     settle)

BROKER_PORT = 19492
DRAIN_S = 5
GRACE_S = DRAIN_S + 15  # drain timeout + snapshot + sink close, generously


def pending_in(line: str) -> int:
    match = re.search(r"pending_deltas=(\d+)", line)
    assert match, f"no pending_deltas in log line: {line}"
    return int(match.group(1))


def test_sigterm_mid_stream_loses_nothing(procs):
    broker = procs.broker(BROKER_PORT)
    topic = "faults-sigterm"
    broker.create_topic(topic)
    tracker = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="sigterm",
                            accounting={"shutdown_drain_timeout_s": DRAIN_S})
    tracker.start()
    entries = make_entries(users=12, torrents=5, clients_per_user=3, seed=1)
    ledger = Ledger()
    establish(tracker, entries, ledger)

    load = LoadDriver(tracker, entries, ledger, workers=6).start()
    try:
        load.wait_accepted(800, timeout=90)
        signalled = time.monotonic()
        rc = tracker.terminate(timeout=GRACE_S)
        exit_s = time.monotonic() - signalled
    finally:
        load.stop()
    assert rc == 0, f"exit code {rc} after SIGTERM (None = still running after {GRACE_S}s)\n{tracker.describe()}"
    accepted_before = ledger.accepted_count()

    # The log says what went to the snapshot.
    written = tracker.wait_log("accounting snapshot written", timeout=1)
    to_snapshot = pending_in(written)
    log = tracker.log()
    if to_snapshot:
        assert "undelivered deltas" in log, log
    else:
        assert "every delta was published" in log, log

    # Restart: same config, same snapshot; it restores exactly that much.
    tracker.start()
    restored = tracker.wait_log("restored accounting snapshot", timeout=10)
    assert pending_in(restored) == to_snapshot, restored
    settle(tracker, entries, ledger)
    rc2 = tracker.terminate(timeout=GRACE_S)
    assert rc2 == 0, tracker.describe()

    contents = read_topic(broker.bootstrap, topic)
    truth = ledger.truth()
    diff = compare(truth, contents.totals())
    report("sigterm-mid-stream", accepted_announces=ledger.accepted_count(),
           accepted_before_sigterm=accepted_before, exit_s=f"{exit_s:.2f}", to_snapshot=to_snapshot,
           records=contents.records, unique_deltas=len(contents.unique()),
           raw_duplicates=contents.duplicates, users_wrong=len(diff), outcomes=dict(ledger.outcomes))
    assert diff == {}, f"per-user totals differ from the ledger: {diff}"
    assert sum(t[0] + t[1] for t in truth.values()) > 0
