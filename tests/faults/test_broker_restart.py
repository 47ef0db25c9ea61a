"""The broker is killed (SIGKILL) under load and restarted on persistent
storage, so the topic survives: Tansu's s3:// storage engine on a moto S3
server (its own process). This Tansu build has neither postgres nor sqlite
compiled in (FeatureNotEnabled), only memory and S3 ("dynostore").

While the broker is down, announces fill the pending bound and then get the
retry-later failure; after the restart the tracker catches up. Nothing here
takes privtrak's word for anything (no /metrics figure): the checks use the
ground-truth ledger, the topic, and a second, independent reader of the
topic (CommittedTap, read_committed, following it while the load runs).

Tansu's s3:// engine can drop records it had acknowledged and served as
committed: after a restart it can write new records at the offsets of old
ones (scripts/BROKER-NOTES.md). The tap is the broker's own testimony of
what it held: just before the kill the tracker is frozen for an instant
(SIGSTOP) until the tap has read everything the broker holds as committed
(up to Tansu's last stable offset, read from its metadata in S3), then the
broker is killed and the tracker continued. A delta the tap saw committed
and the final read no longer finds is the broker's loss, counted from the
tap's copy; everything else must be on the topic. So the exact checks are:

* every sequence number of the tracker's one instance from 1 to the highest
  is on the topic or among the broker's losses (a delta privtrak numbered
  but never published is a gap nothing explains: red);
* the gaps on the topic are exactly the broker's losses, one each;
* per user, the topic's totals plus the losses equal the ledger exactly
  (nothing lost, nothing counted twice): the topic alone differs from the
  ledger by exactly the sum of the lost deltas;
* deltas: at least one per accepted announce after the first of each entry,
  at most that plus the announces whose answer never arrived;
* announces accepted while the broker is down: at most the pending bound
  (`max_pending_deltas`: nothing is durably published while it is down, so
  nothing leaves the bound) plus one in-flight announce per load worker.
"""

from __future__ import annotations

import time

from harness import (CommittedTap, Ledger, LoadDriver, compare, establish, make_entries, quirk,
                     read_topic_recovering, report, settle, stable_offsets, totals_of)
from support.common import DeadlineExceeded, wait_until

BROKER_PORT = 19494
S3_PORT = 19499
MAX_PENDING_DELTAS = 400
WORKERS = 6


def test_broker_killed_and_restarted_on_persistent_storage(procs):
    s3 = procs.s3(S3_PORT)
    broker = procs.broker(BROKER_PORT, storage="s3://tansu/", extra_env=s3.broker_env())
    topic = "faults-restart"
    broker.create_topic(topic)
    tracker = procs.tracker(bootstrap=broker.bootstrap, topic=topic, name="restart",
                            accounting={"max_pending_deltas": MAX_PENDING_DELTAS,
                                        "max_pending_bytes": 256 << 10,
                                        "max_wait_s": 1, "shutdown_drain_timeout_s": 10})
    tracker.start()
    entries = make_entries(users=10, torrents=4, clients_per_user=3, seed=3)
    ledger = Ledger()
    tap = CommittedTap(broker.bootstrap, topic).start()
    try:
        establish(tracker, entries, ledger)
        load = LoadDriver(tracker, entries, ledger, workers=WORKERS).start()
        try:
            load.wait_accepted(300, timeout=60)
            tap_synced_s = sync_tap_and_kill(tracker, broker, s3, tap, topic)
            killed_at = time.monotonic()
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
    finally:
        tap.stop()
    settle(tracker, entries, ledger)
    rc = tracker.terminate(timeout=40)
    assert rc == 0, f"exit code {rc}\n{tracker.describe()}"

    contents = read_topic_recovering(broker, topic, [tracker.transactional_id], s3=s3)
    on_topic = contents.unique()
    seen, seen_at = tap.snapshot()
    lost = {origin: d for origin, d in seen.items() if origin not in on_topic}
    if lost:
        examples = ", ".join(f"seq {o[1]} was at {seen_at[o][0]}/{seen_at[o][1]}, which now holds "
                             f"{describe_record(contents, seen_at[o])}" for o in sorted(lost)[:3])
        quirk("s3-offset-reuse", f"{len(lost)} deltas the broker served as committed before its kill are not "
                                 f"on the topic after its restart ({examples}); counted from the tap's copy")
    combined = {**on_topic, **lost}
    instances = sorted({instance for (instance, _) in combined})
    sequences = {seq for (_, seq) in combined}
    highest = max(sequences, default=0)
    never_published = sorted(set(range(1, highest + 1)) - sequences)
    gaps_on_topic = sorted(set(range(1, highest + 1)) - {seq for (_, seq) in on_topic})
    truth = ledger.truth()
    diff = compare(truth, totals_of(combined.values()))
    min_deltas = ledger.accepted_count() - len(entries)
    unanswered = sum(v for k, v in ledger.outcomes.items() if k.endswith(":error"))
    report("broker-killed-restarted-s3", down_s=f"{down_s:.2f}", accepted_while_down=accepted_while_down,
           down_bound=MAX_PENDING_DELTAS + WORKERS, recovery_s=f"{recovery_s:.2f}",
           tap_synced_s=tap_synced_s, accepted_announces=ledger.accepted_count(), records=contents.records,
           unique_on_topic=len(on_topic), lost_by_broker=len(lost), gaps_on_topic=len(gaps_on_topic),
           never_published=len(never_published), raw_duplicates=contents.duplicates,
           read_recoveries=contents.recoveries, users_wrong=len(diff), failures=dict(ledger.failures))

    # Announces accepted while nothing could be published: within the bound.
    assert accepted_while_down <= MAX_PENDING_DELTAS + WORKERS, accepted_while_down
    # One tracker process, numbering its deltas 1, 2, 3, ... with none missing
    # except what the broker provably dropped.
    assert len(instances) == 1, f"deltas of {len(instances)} instances, one tracker process ran: {instances}"
    assert never_published == [], (
        f"{len(never_published)} sequence numbers are neither on the topic nor among what the broker held "
        f"before its kill: deltas privtrak never published (first: {never_published[:10]})")
    assert gaps_on_topic == sorted(seq for (_, seq) in lost), (gaps_on_topic, sorted(lost))
    # A delta per accepted announce after each entry's first, and no more
    # than the announces that may have been recorded.
    assert min_deltas <= len(combined) <= min_deltas + unanswered, (len(combined), min_deltas, unanswered)
    # Exact per user: what the topic holds plus what the broker dropped, so
    # the topic alone falls short of the ledger by exactly the lost deltas.
    assert diff == {}, f"per-user totals (topic + broker losses) differ from the ledger: {diff}"


def sync_tap_and_kill(tracker, broker, s3, tap, topic) -> str:
    """Freezes the tracker, waits (bounded) until the tap has read everything
    the broker holds as committed (Tansu's last stable offset per partition,
    from its S3 metadata, the same twice in a row), SIGKILLs the broker and
    continues the tracker. Returns how long the tracker was frozen, or
    'no' (logged) when the tap could not catch up: then a loss it did not
    see makes the test fail as privtrak's, so it is reported loudly."""
    frozen_at = time.monotonic()
    tracker.freeze()
    try:
        last = {}

        def synced():
            stable = stable_offsets(s3, broker.cluster_id, topic, tap.partitions)
            ok = tap.caught_up(stable) and stable == last.get("stable")
            last["stable"] = stable
            return ok

        try:
            wait_until(synced, 10, "the tap to read everything the broker holds as committed", interval=0.02)
            synced_s = f"{time.monotonic() - frozen_at:.2f}"
        except DeadlineExceeded as exc:
            synced_s = "no"
            print(f"\nTAP-NOT-SYNCED before the broker kill: {exc}; tap at {tap.positions}, "
                  f"broker stable offsets {last.get('stable')}", flush=True)
        broker.kill()
    finally:
        tracker.thaw()
    tap.stop()  # its testimony is what the broker held before the kill
    return synced_s


def describe_record(contents, where) -> str:
    origins = contents.where.get(where)
    return f"sequences {[s for (_, s) in origins]}" if origins else "no delta record"
