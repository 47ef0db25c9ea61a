"""privtrak.apply_deltas against a real PostgreSQL: credit, exactly-once by
offset, dedupe by origin, offsets, concurrency, seed/leech time, events,
rejected records."""

import threading
import time

import psycopg
import pytest

from ledger_sql import APPLY_SQL, NOW_MS, TOPIC, Batch, apply, ih, one, uid

GiB = 1 << 30


def totals(conn, user=1):
    return one(conn, "SELECT uploaded, downloaded, credited_uploaded, credited_downloaded"
                     " FROM privtrak.user_totals WHERE user_id = %s", (uid(user),))


def ut(conn, user=1, torrent=1, cols="*"):
    cur = conn.execute(f"SELECT {cols} FROM privtrak.user_torrents WHERE user_id = %s AND info_hash = %s",
                       (uid(user), ih(torrent)))
    return cur.fetchone()


def offsets(conn):
    return dict(conn.execute("SELECT partition, next_offset FROM privtrak.partition_offsets"
                             " WHERE topic = %s", (TOPIC,)))


def test_empty_batch(db):
    assert apply(db, Batch()) == (0, 0, 0)
    b = Batch()
    b.next_offsets[3] = 17
    assert apply(db, b) == (0, 0, 0)
    assert offsets(db) == {3: 17}


def test_credit_with_factors(db):
    b = Batch()
    b.add(user=1, torrent=1, up=1000, down=2000, seq=1)                      # absent = 100
    b.add(user=1, torrent=2, up=1000, down=2000, seq=2, uf=100, df=0)        # freeleech
    b.add(user=1, torrent=3, up=1001, down=2001, seq=3, uf=200, df=50)       # double up, half leech
    b.add(user=2, torrent=3, up=999, down=7, seq=4, uf=-1, df=0)
    b.add(user=2, torrent=3, up=3, down=3, seq=5, uf=33, df=33)              # integer division
    assert apply(db, b) == (5, 0, 0)
    assert totals(db, 1) == (3001, 6001, 1000 + 1000 + 2002, 2000 + 0 + 1000)
    assert totals(db, 2) == (1002, 10, 999 + 0, 0 + 0)
    assert ut(db, 1, 2, "uploaded, downloaded, credited_uploaded, credited_downloaded") == (1000, 2000, 1000, 0)
    assert ut(db, 1, 3, "credited_uploaded, credited_downloaded, announces") == (2002, 1000, 1)
    assert ut(db, 2, 3, "announces") == (2,)
    assert one(db, "SELECT uploaded, downloaded, snatches FROM privtrak.torrent_totals WHERE info_hash = %s",
               (ih(3),)) == (1001 + 999 + 3, 2001 + 7 + 3, 0)
    r = one(db, "SELECT ratio FROM privtrak.user_ratios WHERE user_id = %s", (uid(1),))[0]
    assert float(r) == pytest.approx(4002 / 3000)
    # big numbers: no overflow in the credit
    b2 = Batch(next_offsets=dict(b.next_offsets))
    b2.add(user=3, up=40 * (1 << 50), down=0, seq=6, uf=200)
    apply(db, b2)
    assert totals(db, 3)[2] == 80 * (1 << 50)


def test_same_batch_twice_is_skipped_by_offset(db):
    b = Batch()
    for i in range(10):
        b.add(user=1 + i % 3, up=100, down=10, seq=i + 1, event=2 if i == 0 else 0, seeding=i == 0)
    b.reject(reason="undecodable")
    assert apply(db, b) == (10, 0, 0)
    state = [db.execute(f"SELECT * FROM privtrak.{t} ORDER BY 1, 2").fetchall()
             for t in ("user_totals", "torrent_totals", "origin_marks", "rejected_records", "torrent_windows")]
    assert apply(db, b) == (0, 0, 11)
    state2 = [db.execute(f"SELECT * FROM privtrak.{t} ORDER BY 1, 2").fetchall()
              for t in ("user_totals", "torrent_totals", "origin_marks", "rejected_records", "torrent_windows")]
    assert state2 == state
    assert totals(db, 1)[:2] == (400, 40)


def test_aborted_copy_then_committed_retry_counts_once(db):
    aborted = Batch()
    for i in range(5):
        aborted.add(user=1, up=100, seq=11 + i, instance=-42)
    assert apply(db, aborted) == (5, 0, 0)
    # The retry: same deltas (instance, sequences), at higher offsets, plus new ones.
    retry = Batch(next_offsets=dict(aborted.next_offsets))
    for i in range(5):
        retry.add(user=1, up=100, seq=11 + i, instance=-42)
    retry.add(user=1, up=7, seq=16, instance=-42)
    retry.add(user=1, up=1, seq=1, instance=99)   # another instance: its own marks
    assert apply(db, retry) == (2, 5, 0)
    assert totals(db, 1)[0] == 508
    assert dict(db.execute("SELECT instance, last_sequence FROM privtrak.origin_marks")) == {-42: 16, 99: 1}
    assert offsets(db) == {0: 12}
    # Both copies inside one batch
    both = Batch(next_offsets=dict(retry.next_offsets))
    for _ in range(2):
        for i in range(3):
            both.add(user=2, up=10, seq=100 + i, instance=-42)
    assert apply(db, both) == (3, 3, 0)
    assert totals(db, 2)[0] == 30


def test_within_batch_duplicate_counted_once(db):
    b = Batch()
    b.add(user=1, up=5, seq=1)
    b.add(user=1, up=5, seq=1)                 # identical, next offset
    b.add(user=1, up=5, seq=2)
    b.add(user=1, up=5, seq=2, same_record=True)  # same record twice (per-batch framing)
    b.add(user=1, up=5, seq=1, partition=1)   # other partition: its own marks
    assert apply(db, b) == (3, 2, 0)
    assert totals(db, 1)[0] == 15
    assert ut(db, cols="announces") == (3,)


def test_offsets_stored_are_the_greatest(db):
    b = Batch()
    b.add(seq=1, partition=0).add(seq=2, partition=2)
    b.next_offsets = {0: 50, 2: 7}
    apply(db, b)
    assert offsets(db) == {0: 50, 2: 7}
    lower = Batch(next_offsets={0: 10, 2: 9})
    assert apply(db, lower) == (0, 0, 0)
    assert offsets(db) == {0: 50, 2: 9}
    # Start query of the contract
    assert dict(db.execute("SELECT partition, next_offset FROM privtrak.partition_offsets WHERE topic = %s",
                           (TOPIC,)).fetchall()) == {0: 50, 2: 9}
    # a delta below the stored offset is skipped, one at it is applied
    c = Batch()
    c.add(seq=3, partition=0, offset=49).add(seq=4, partition=0, offset=50)
    assert apply(db, c) == (1, 0, 1)
    assert offsets(db)[0] == 51


def test_topics_are_independent(db):
    a = Batch().add(user=1, up=1, seq=1)
    b = Batch(topic="other").add(user=1, up=1, seq=1)
    assert apply(db, a) == (1, 0, 0)
    assert apply(db, b) == (1, 0, 0)
    assert totals(db)[0] == 2


def test_concurrent_ledgers_with_overlapping_batches_end_exact(db_url):
    """Two connections apply overlapping batches of the same partitions (a
    rebalance: both read the same records); every delta counts once."""
    n_batches, per_batch, users = 40, 50, 7
    batches = []
    seq = 0
    nxt = {0: 0, 1: 0}
    for k in range(n_batches):
        b = Batch(next_offsets={})
        for i in range(per_batch):
            seq += 1
            p = i % 2
            b.add(user=1 + seq % users, torrent=1 + seq % 3, up=seq, down=1, seq=seq, partition=p,
                  offset=nxt[p], instance=5)
            nxt[p] += 1
        batches.append(b)
    # Overlap: ledger B's batches are A's shifted by half a batch.
    flat = [d for b in batches for d in b.d]
    half = per_batch // 2
    batches_b = []
    for start in range(0, len(flat), per_batch):
        b = Batch(next_offsets={})
        for d in flat[max(0, start - half):start + half]:
            b.d.append(d)
            b.next_offsets[d["partition"]] = max(b.next_offsets.get(d["partition"], 0), d["offset"] + 1)
        batches_b.append(b)
    results = {}
    errors = []
    barrier = threading.Barrier(2)

    def run(name, bs):
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                barrier.wait()
                out = [0, 0, 0]
                for b in bs:
                    while True:
                        try:
                            r = apply(c, b)
                            break
                        except psycopg.errors.DeadlockDetected:   # a ledger retries its batch
                            continue
                    out = [x + y for x, y in zip(out, r)]
                results[name] = out
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=("a", batches)), threading.Thread(target=run, args=("b", batches_b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    total = n_batches * per_batch
    assert results["a"][0] + results["b"][0] == total
    # every delta either ledger saw is counted once: applied, skipped or duplicate
    assert sum(results["a"]) == total and sum(results["b"]) == sum(len(b.d) for b in batches_b)
    assert results["a"][2] + results["b"][2] > 0   # the overlap was skipped by offset
    with psycopg.connect(db_url) as c:
        assert one(c, "SELECT sum(uploaded), sum(downloaded) FROM privtrak.user_totals") == (
            total * (total + 1) // 2, total)
        assert one(c, "SELECT sum(announces) FROM privtrak.user_torrents")[0] == total
        for u in range(users):
            expected = sum(s for s in range(1, total + 1) if 1 + s % users == 1 + u)
            assert one(c, "SELECT uploaded FROM privtrak.user_totals WHERE user_id = %s", (uid(1 + u),))[0] == expected
        assert dict(c.execute("SELECT partition, next_offset FROM privtrak.partition_offsets")) == nxt


def test_seed_and_leech_time(db):
    db.execute("UPDATE privtrak.settings SET value = 600 WHERE name = 'peer_lifetime_s'")
    t0 = NOW_MS - 10 * 3600 * 1000
    b = Batch()
    s = iter(range(1, 100))
    # first delta of the entry: no previous announce known -> nothing counted
    b.add(at_ms=t0, seeding=False, interval=0, event=1, seq=next(s), peer_id=b"A" * 20)
    b.add(at_ms=t0 + 300_000, seeding=False, interval=300, seq=next(s), peer_id=b"A" * 20)      # leech 300
    b.add(at_ms=t0 + 600_000, seeding=True, interval=300, event=2, seq=next(s), peer_id=b"A" * 20)  # was leeching: nothing
    b.add(at_ms=t0 + 900_000, seeding=True, interval=300, seq=next(s), peer_id=b"A" * 20)       # seed 300
    b.add(at_ms=t0 + 2_100_000, seeding=True, interval=1200, seq=next(s), peer_id=b"A" * 20)    # gap > lifetime: 0
    b.add(at_ms=t0 + 2_700_000, seeding=True, interval=600, seq=next(s), peer_id=b"A" * 20)     # = lifetime: seed 600
    assert apply(db, b) == (6, 0, 0)
    assert ut(db, cols="seed_seconds, leech_seconds") == (900, 300)
    assert one(db, "SELECT seeding FROM privtrak.peer_sessions WHERE peer_id = %s", (b"A" * 20,)) == (True,)
    # The next batch continues from the stored session; a second peer id is its own entry.
    b2 = Batch(next_offsets=dict(b.next_offsets))
    b2.add(at_ms=t0 + 3_000_000, seeding=True, interval=300, seq=next(s), peer_id=b"A" * 20)    # seed 300
    b2.add(at_ms=t0 + 3_000_000, seeding=True, interval=100, seq=next(s), peer_id=b"B" * 20)    # new entry: 0
    b2.add(at_ms=t0 + 3_100_000, seeding=True, interval=100, seq=next(s), peer_id=b"B" * 20)    # seed 100
    b2.add(at_ms=t0 + 3_200_000, seeding=True, interval=100, event=3, seq=next(s), peer_id=b"A" * 20)  # seed 100, closes A
    assert apply(db, b2) == (4, 0, 0)
    assert ut(db, cols="seed_seconds, leech_seconds, active") == (1400, 300, True)  # B still open
    assert [bytes(r[0]) for r in db.execute("SELECT peer_id FROM privtrak.peer_sessions")] == [b"B" * 20]
    # After A's stop, A's next announce starts over (nothing counted).
    b3 = Batch(next_offsets=dict(b2.next_offsets))
    b3.add(at_ms=t0 + 3_300_000, seeding=True, interval=100, event=1, seq=next(s), peer_id=b"A" * 20)
    b3.add(at_ms=t0 + 3_300_000, seeding=True, interval=200, event=3, seq=next(s), peer_id=b"B" * 20)  # seed 200
    b3.add(at_ms=t0 + 3_400_000, seeding=True, interval=100, event=3, seq=next(s), peer_id=b"A" * 20)  # seed 100
    assert apply(db, b3) == (3, 0, 0)
    assert ut(db, cols="seed_seconds, active") == (1700, False)
    assert one(db, "SELECT count(*) FROM privtrak.peer_sessions")[0] == 0
    # Stop and restart inside one batch: the restart starts over too.
    b4 = Batch(next_offsets=dict(b3.next_offsets))
    c = b"C" * 20
    b4.add(at_ms=t0 + 4_000_000, seeding=True, interval=0, event=1, seq=next(s), peer_id=c)
    b4.add(at_ms=t0 + 4_100_000, seeding=True, interval=100, seq=next(s), peer_id=c)            # seed 100
    b4.add(at_ms=t0 + 4_200_000, seeding=True, interval=100, event=3, seq=next(s), peer_id=c)   # seed 100
    b4.add(at_ms=t0 + 4_250_000, seeding=True, interval=50, event=1, seq=next(s), peer_id=c)    # restart: 0
    b4.add(at_ms=t0 + 4_350_000, seeding=True, interval=100, seq=next(s), peer_id=c)            # seed 100
    assert apply(db, b4) == (5, 0, 0)
    assert ut(db, cols="seed_seconds, active") == (2000, True)


def test_seed_time_order_within_batch_follows_reported_at(db):
    # Array order differs from time order: the window orders by reported_at.
    t0 = NOW_MS - 3600_000
    b = Batch()
    # (three tracker instances, so no sequence is below another of its origin)
    b.add(at_ms=t0 + 200_000, seeding=True, interval=100, instance=3, seq=1)
    b.add(at_ms=t0, seeding=True, interval=0, instance=1, seq=1)
    b.add(at_ms=t0 + 100_000, seeding=True, interval=100, instance=2, seq=1)
    assert apply(db, b) == (3, 0, 0)
    assert ut(db, cols="seed_seconds, first_announce_at = to_timestamp(%d / 1000.0)" % t0) == (200, True)


def test_completed_counts_snatch_once_and_stopped_deactivates(db):
    t0 = NOW_MS - 3600_000
    b = Batch()
    b.add(user=1, at_ms=t0, event=1, seq=1)
    b.add(user=1, at_ms=t0 + 60_000, event=2, seeding=True, down=GiB, interval=60, seq=2)
    b.add(user=2, at_ms=t0 + 60_000, event=2, seeding=True, down=GiB, interval=60, seq=3)
    apply(db, b)
    first = one(db, "SELECT completed_at FROM privtrak.user_torrents WHERE user_id = %s", (uid(1),))[0]
    assert first is not None
    assert abs(first.timestamp() * 1000 - (t0 + 60_000)) < 1
    assert one(db, "SELECT snatches FROM privtrak.torrent_totals")[0] == 2
    assert ut(db, cols="active") == (True,)
    # A later completed (another peer id) does not move completed_at.
    b2 = Batch(next_offsets=dict(b.next_offsets))
    b2.add(user=1, at_ms=t0 + 120_000, event=2, seeding=True, seq=4, peer_id=b"x" * 20)
    b2.add(user=1, at_ms=t0 + 180_000, event=3, seeding=True, interval=60, seq=5, peer_id=b"x" * 20)
    b2.add(user=1, at_ms=t0 + 180_000, event=3, seeding=True, interval=120, seq=6)
    apply(db, b2)
    assert ut(db, cols="completed_at") == (first,)
    assert one(db, "SELECT snatches FROM privtrak.torrent_totals")[0] == 3
    assert ut(db, cols="active, announces") == (False, 5)
    assert ut(db, 2, cols="active") == (True,)
    # expired too
    b3 = Batch(next_offsets=dict(b2.next_offsets))
    b3.add(user=2, at_ms=t0 + 200_000, event=4, seeding=True, seq=7)
    apply(db, b3)
    assert ut(db, 2, cols="active") == (False,)
    # announcing again reactivates
    b4 = Batch(next_offsets=dict(b3.next_offsets))
    b4.add(user=2, at_ms=t0 + 300_000, event=1, seeding=True, seq=8)
    apply(db, b4)
    assert ut(db, 2, cols="active") == (True,)


def test_first_and_last_announce(db):
    b = Batch()
    b.add(at_ms=1_700_000_000_123, seq=1).add(at_ms=1_700_000_100_000, seq=2)
    apply(db, b)
    b2 = Batch(next_offsets=dict(b.next_offsets)).add(at_ms=1_699_999_999_000, seq=3)
    apply(db, b2)
    f, l = ut(db, cols="extract(epoch from first_announce_at), extract(epoch from last_announce_at)")
    assert float(f) == pytest.approx(1_699_999_999.0)
    assert float(l) == pytest.approx(1_700_000_100.0)


def test_rejected_records_stored(db):
    b = Batch()
    b.add(seq=1)
    b.reject(key=b"\x01\x02", value=b"\xff garbage", reason="unknown privtrak-type")
    b.add(seq=2)
    b.reject(key=None, value=None, reason="null value")
    assert apply(db, b) == (2, 0, 0)
    rows = db.execute("SELECT partition, kafka_offset, key, value, reason FROM privtrak.rejected_records"
                      " ORDER BY kafka_offset").fetchall()
    assert rows == [(0, 1, b"\x01\x02", b"\xff garbage", "unknown privtrak-type"), (0, 3, None, None, "null value")]
    assert offsets(db) == {0: 4}
    assert apply(db, b) == (0, 0, 4)


def test_mismatched_array_lengths_are_refused(db):
    b = Batch().add(seq=1)
    args = list(b.args())
    args[7] = [1, 2]   # d_uploaded too long
    with pytest.raises(psycopg.errors.RaiseException, match="differ in length"):
        db.execute(APPLY_SQL, args)
    assert offsets(db) == {}


def test_audit_log_partitions(db):
    db.execute("UPDATE privtrak.settings SET value = 1 WHERE name = 'audit_enabled'")
    day = 86_400_000
    b = Batch()
    b.add(at_ms=NOW_MS - 40 * day, up=1, seq=1)
    b.add(at_ms=NOW_MS - 2 * day, up=2, seq=2)
    b.add(at_ms=NOW_MS, up=3, seq=3)
    b.add(at_ms=NOW_MS, up=3, seq=3)   # duplicate: not audited
    assert apply(db, b) == (3, 1, 0)
    parts = [r[0] for r in db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'privtrak.deltas'::regclass ORDER BY 1")]
    assert len(parts) == 3
    assert one(db, "SELECT count(*), sum(uploaded) FROM privtrak.deltas") == (3, 6)
    dropped = [r[0] for r in db.execute("SELECT * FROM privtrak.drop_expired_delta_partitions()")]
    assert dropped == [parts[0]]
    assert one(db, "SELECT count(*), sum(uploaded) FROM privtrak.deltas") == (2, 5)
    # disabled: nothing more stored
    db.execute("UPDATE privtrak.settings SET value = 0 WHERE name = 'audit_enabled'")
    apply(db, Batch(next_offsets=dict(b.next_offsets)).add(up=9, seq=4))
    assert one(db, "SELECT count(*) FROM privtrak.deltas")[0] == 2


def test_hundred_thousand_deltas_in_one_call(db):
    n = 100_000
    b = Batch()
    t0 = NOW_MS - 3600_000
    for i in range(n):
        b.add(user=1 + i % 5000, torrent=1 + i % 2000, up=1000 + i, down=i % 7, seq=i + 1,
              at_ms=t0 + i, seeding=i % 3 == 0, interval=1800, partition=i % 4,
              peer_id=(i % 5000).to_bytes(20, "big"), event=2 if i % 1000 == 0 else 0)
    args = b.args()
    start = time.monotonic()
    assert db.execute(APPLY_SQL, args).fetchone() == (n, 0, 0)
    elapsed = time.monotonic() - start
    print(f"\napply_deltas: {n} deltas in {elapsed:.2f} s ({n / elapsed:.0f} deltas/s)")
    assert one(db, "SELECT sum(uploaded), sum(announces) FROM privtrak.user_torrents") == (
        sum(1000 + i for i in range(n)), n)
    assert one(db, "SELECT sum(snatches) FROM privtrak.torrent_totals")[0] == n // 1000
    start = time.monotonic()
    assert db.execute(APPLY_SQL, args).fetchone() == (0, 0, n)
    print(f"apply_deltas: the same {n} again (all skipped) in {time.monotonic() - start:.2f} s")


def test_concurrent_ledgers_on_different_partitions_share_users_without_deadlock(db_url):
    """Two ledgers own different partitions (per-batch framing: one partition
    per tracker process) and write the same users and torrents: rows are
    upserted in key order, so neither waits on the other in a cycle."""
    n_batches, per_batch, users = 30, 200, 50
    errors, deadlocks, done = [], [], {}
    barrier = threading.Barrier(2)

    def run(partition):
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                barrier.wait()
                off = 0
                applied = 0
                for k in range(n_batches):
                    b = Batch(next_offsets={})
                    for i in range(per_batch):
                        # reversed user order in one of them: the arrays' order must not matter
                        u = (i % users) if partition == 0 else (users - 1 - i % users)
                        b.add(user=1 + u, torrent=1 + i % 3, up=1, down=2, seq=k * per_batch + i + 1,
                              instance=100 + partition, partition=partition, offset=off,
                              peer_id=bytes([partition]) * 20, seeding=True, interval=10,
                              event=3 if k == n_batches - 1 and i >= per_batch - users else 0)
                        off += 1
                    try:
                        applied += apply(c, b)[0]
                    except psycopg.errors.DeadlockDetected:
                        deadlocks.append(partition)
                        applied += apply(c, b)[0]
                done[partition] = applied
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(p,)) for p in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert deadlocks == []
    total = 2 * n_batches * per_batch
    assert done == {0: total // 2, 1: total // 2}
    with psycopg.connect(db_url) as c:
        assert one(c, "SELECT sum(uploaded), sum(downloaded), count(*) FROM privtrak.user_totals") == (
            total, 2 * total, users)
        assert one(c, "SELECT sum(announces) FROM privtrak.user_torrents")[0] == total
