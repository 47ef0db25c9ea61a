"""hit_and_run_candidates, suspicious_uploads and upload_rate cheat flags,
with small settings and deltas reported in the past."""

from ledger_sql import NOW_MS, Batch, apply, ih, one, uid

H = 3600_000  # ms


def set_setting(conn, name, value):
    assert conn.execute("UPDATE privtrak.settings SET value = %s WHERE name = %s", (value, name)).rowcount == 1


def test_hit_and_run_candidates(db):
    set_setting(db, "hnr_min_seed_s", 1000)
    set_setting(db, "hnr_grace_s", 7200)       # 2 h
    set_setting(db, "peer_lifetime_s", 3600)
    t0 = NOW_MS - 10 * H
    b = Batch()
    seq = iter(range(1, 1000))

    def entry(user, torrent, seed_s, stop=True, at=t0, complete=True):
        # start leeching, complete, seed seed_s seconds in steps, stop (or not)
        b.add(user=user, torrent=torrent, at_ms=at, event=1, seq=next(seq))
        t = at + 60_000
        b.add(user=user, torrent=torrent, at_ms=t, interval=60, seeding=complete,
              event=2 if complete else 0, down=1000, seq=next(seq))
        left = seed_s
        while left > 0:
            step = min(left, 500)
            t += step * 1000
            b.add(user=user, torrent=torrent, at_ms=t, interval=step, seeding=complete, seq=next(seq))
            left -= step
        if stop:
            t += 1000
            b.add(user=user, torrent=torrent, at_ms=t, interval=1, seeding=complete, event=3, seq=next(seq))
        return t

    entry(1, 1, 0)                      # snatched, stopped at once, 10 h ago: HnR
    entry(2, 1, 998)                    # seeded 998 + 1 s < 1000: HnR
    entry(3, 1, 999)                    # 999 + 1 = 1000: enough
    entry(4, 1, 0, at=NOW_MS - 1 * H)   # stopped 1 h ago: still in grace
    entry(5, 1, 0, complete=False)      # never completed: not a snatch
    entry(6, 1, 0, stop=False)          # never stopped, silent for 10 h (> lifetime): gone, HnR
    entry(7, 2, 0, stop=False, at=NOW_MS - 3 * H)  # silent 3 h: past grace, but... (see below)
    assert apply(db, b)[0] == len(b.d)
    got = {(bytes(u), bytes(t)) for u, t in db.execute(
        "SELECT user_id, info_hash FROM privtrak.hit_and_run_candidates")}
    assert got == {(uid(1), ih(1)), (uid(2), ih(1)), (uid(6), ih(1)), (uid(7), ih(2))}
    seeded = dict((bytes(u), s) for u, s in db.execute(
        "SELECT user_id, seed_seconds FROM privtrak.user_torrents WHERE info_hash = %s", (ih(1),)))
    assert seeded[uid(2)] == 999 and seeded[uid(3)] == 1000
    row = one(db, "SELECT missing_seed_seconds, required_seed_seconds FROM privtrak.hit_and_run_candidates"
                  " WHERE user_id = %s", (uid(2),))
    assert row == (1, 1000)
    # User 7 comes back and seeds: an active entry announcing now is no candidate.
    b2 = Batch(next_offsets=dict(b.next_offsets))
    b2.add(user=7, torrent=2, at_ms=NOW_MS, event=1, seeding=True, seq=next(seq))
    apply(db, b2)
    got = {bytes(u) for (u,) in db.execute("SELECT user_id FROM privtrak.hit_and_run_candidates")}
    assert uid(7) not in got
    # A longer grace hides them all.
    set_setting(db, "hnr_grace_s", 11 * 3600)
    assert one(db, "SELECT count(*) FROM privtrak.hit_and_run_candidates")[0] == 0


def test_suspicious_uploads(db):
    set_setting(db, "suspicious_window_s", 600)
    w = (NOW_MS // 600_000) * 600_000 - 3 * 600_000   # start of a window 30 min ago
    b = Batch()
    s = iter(range(1, 100))
    # window 1: user 1 uploads 1000; users 2 and 3 download 600 + 300 = 900 -> suspicious
    b.add(user=1, torrent=1, at_ms=w + 1000, up=600, seq=next(s))
    b.add(user=1, torrent=1, at_ms=w + 2000, up=400, down=50, seq=next(s))
    b.add(user=2, torrent=1, at_ms=w + 3000, down=600, seq=next(s))
    b.add(user=3, torrent=1, at_ms=w + 599_000, down=300, up=10, seq=next(s))
    # the next window: user 1 uploads 500, user 2 downloads 500 -> fine (not more)
    b.add(user=1, torrent=1, at_ms=w + 600_000, up=500, seq=next(s))
    b.add(user=2, torrent=1, at_ms=w + 600_001, down=500, seq=next(s))
    # torrent 2, window 1: user 4 uploads what only they "downloaded" -> suspicious
    b.add(user=4, torrent=2, at_ms=w + 5000, up=100, down=100, seq=next(s))
    apply(db, b)
    rows = db.execute("SELECT user_id, info_hash, extract(epoch from window_start) * 1000, uploaded,"
                      " others_downloaded, excess FROM privtrak.suspicious_uploads ORDER BY 1, 2").fetchall()
    assert [(bytes(u), bytes(t), int(ws), up, od, ex) for u, t, ws, up, od, ex in rows] == [
        (uid(1), ih(1), w, 1000, 900, 100),
        (uid(4), ih(2), w, 100, 0, 100),
    ]
    # One more download in window 1 of torrent 1 (a later batch): user 1 is covered.
    b2 = Batch(next_offsets=dict(b.next_offsets))
    b2.add(user=5, torrent=1, at_ms=w + 10_000, down=100, seq=next(s))
    apply(db, b2)
    assert [bytes(u) for (u,) in db.execute("SELECT user_id FROM privtrak.suspicious_uploads")] == [uid(4)]
    assert one(db, "SELECT uploaded, downloaded FROM privtrak.torrent_windows WHERE info_hash = %s"
                   " AND user_id = %s AND window_start = to_timestamp(%s / 1000.0)", (ih(1), uid(1), w)) == (1000, 50)


def test_upload_rate_cheat_flags(db):
    set_setting(db, "max_upload_rate_bps", 1000)
    b = Batch()
    b.add(user=1, up=1000 * 60, interval=60, seq=1)            # exactly the limit: fine
    b.add(user=2, up=1000 * 60 + 1, interval=60, seq=2, peer_id=b"-qB4500-" + b"x" * 12,
          client_ip=bytes([10, 0, 0, 7]))                     # above: flagged
    b.add(user=3, up=10**9, interval=0, seq=3)                 # no interval: not judged
    b.add(user=4, up=10**9, interval=3600, seq=4)              # flagged
    b.add(user=4, up=10**9, interval=3600, seq=4)              # duplicate: not flagged twice
    assert apply(db, b) == (4, 1, 0)
    rows = db.execute("SELECT user_id, kind, detail, kafka_offset, sequence FROM privtrak.cheat_flags"
                      " ORDER BY id").fetchall()
    assert [(bytes(u), k, o, s) for u, k, _, o, s in rows] == [(uid(2), "upload_rate", 1, 2),
                                                                 (uid(4), "upload_rate", 3, 4)]
    d = rows[0][2]
    assert d["uploaded"] == 60001 and d["interval_s"] == 60 and d["max_upload_rate_bps"] == 1000
    assert d["client_ip"] == "0a000007" and bytes.fromhex(d["peer_id"]).startswith(b"-qB4500-")
    # replayed batch: no new flags
    apply(db, b)
    assert one(db, "SELECT count(*) FROM privtrak.cheat_flags")[0] == 2
