"""Issue #7: real-client accounting proof over the Kafka sink.

A libtorrent seeder and a libtorrent leecher, each with ITS OWN passkey in
the announce URL of the same private torrent (two .torrent files, one info
dict: different users, one info hash), exchange a random file on loopback
through privtrak. privtrak runs as a private tracker: both users and the
torrent are put into a registry file (`privtrak registry put-user`,
`put-torrent`) before it starts, with `registry.users: registered` and
`registry.torrents: registered`; the user ids are not the passkeys' bytes, so
the deltas' user ids prove each passkey was mapped to its user. privtrak
publishes to a real Tansu broker; the deltas are read back with `privtrak
tail --from kafka://... --json` (Debian's python has no confluent_kafka). The
consumed per-user totals, after dedupe by origin, equal the clients' own
counters as they report them to trackers: the seeder's user uploaded and the
leecher's user downloaded. The leecher's `completed` announce is recorded.

It runs for each torrent kind libtorrent 2 makes (issue #15): v1-only;
hybrid (libtorrent's default), which each client announces twice, once with
the v1 hash and once with the v2 hash's first 20 bytes, registered with both
hashes so the two announces are one torrent and the bytes count once, under
the v1 hash (registered with its v1 hash alone, in `torrents: any` mode, the
same run credits each user exactly twice its bytes: 1 572 864 for 786 432);
and v2-only, registered by its v2 hash, whose deltas carry its first 20 bytes.

Then the topic goes into PostgreSQL: `privtrak ledger --from kafka://... --to
postgresql://... --admin off` runs against a fresh database of a private
cluster (tests/e2e/ledger_support.py: scripts/postgres on port 19535, started
once per session, queried with the psql CLI) until `privtrak.user_totals`
holds the clients' counters (polled, at most 60 s), and then must exit 0
within 15 s of SIGTERM. Its stored `partition_offsets` must be, per
partition, the offset after the topic's last committed record (read with
kcat); the seeder's user must have uploaded, and the leecher's user
downloaded, exactly what libtorrent counted; the leecher's
`user_torrents.completed_at` on the torrent's key hash must be set, and the
torrent's `torrent_totals.snatches` be 1. The cluster is stopped at session end.

Needs PRIVTRAK_BIN, Tansu (scripts/setup; PRIVTRAK_TANSU or .runtime/bin/tansu),
librdkafka >= 2.2 (.runtime/lib, added to LD_LIBRARY_PATH here), PostgreSQL
(/usr/lib/postgresql/*/bin, psql) and kcat.
The broker gets a free port (never 19092, which `make test` uses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))

from clients import LT_IMPORT_ERROR, TORRENT_KINDS, make_torrent  # noqa: E402
from e2e_helpers import sha256_file, write_random_file  # noqa: E402
from harness import Broker, Tracker  # noqa: E402
from ledger_support import LedgerDb, LedgerProcess, committed_ends, ledger_db, pg_cluster  # noqa: E402,F401
from privtrak_cli import RegistryCLI  # noqa: E402
from support.common import runtime_env, wait_until  # noqa: E402
from support.ports import free_port  # noqa: E402

PAYLOAD_SIZE = 768 * 1024
SEEDER_PASSKEY = "5eed" * 8
LEECHER_PASSKEY = "1eec" * 8
# The registry's user ids for those passkeys (not their bytes).
SEEDER_USER_ID = "000000000000000000000000000005ee"
LEECHER_USER_ID = "0000000000000000000000000000011e"


def tail_deltas(binary: str, bootstrap: str, topic: str) -> list:
    out = subprocess.run([binary, "tail", "--from", f"kafka://{bootstrap}/{topic}", "--json", "--exit-at-end"],
                         capture_output=True, env=runtime_env(), timeout=60)
    assert out.returncode == 0, f"privtrak tail exited {out.returncode}: {out.stderr.decode(errors='replace')}"
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


def announced_hashes(peer) -> list:
    """libtorrent's per-hash announce state: one entry per info hash (v1, v2)
    it announced the torrent with, and whether the tracker refused it."""
    return [{"fails": ih["fails"], "error": ih["last_error"]["value"], "message": ih["message"]}
            for entry in peer.handle.trackers() for endpoint in entry["endpoints"]
            for ih in endpoint["info_hashes"] if ih["start_sent"]]


def unique(deltas: list) -> list:
    """The deltas once each (a broker may show a copy twice), by origin."""
    seen = {}
    for d in deltas:
        seen.setdefault((d["instance"], d["sequence"]), d)
    return list(seen.values())


def per_user(deltas: list) -> dict:
    totals = {}
    for d in unique(deltas):
        up, down = totals.get(d["user_id"], (0, 0))
        totals[d["user_id"]] = (up + d["uploaded"], down + d["downloaded"])
    return totals


@pytest.mark.parametrize("kind", TORRENT_KINDS)
def test_real_clients_accounting_reaches_kafka_exactly(tmp_path: Path, lt_peers, ledger_db: LedgerDb, kind: str):
    binary = os.environ.get("PRIVTRAK_BIN", "").strip()
    if not binary:
        pytest.fail("PRIVTRAK_BIN is required", pytrace=False)
    binary = os.path.abspath(binary)  # privtrak runs in the test's temp dir
    broker = Broker(free_port(), tmp_path)
    tracker = ledger = None
    try:
        broker.start()
        topic = f"e2e-accounting-proof-{kind}"
        tracker = Tracker(binary, tmp_path, bootstrap=broker.bootstrap, topic=topic, name="proof",
                          accounting={"emit_stopped": "true", "batch_size": 1},
                          kafka={"allow_topic_auto_creation": "true"})

        seed_dir = tmp_path / "seed"
        seed_dir.mkdir()
        payload = seed_dir / "payload.bin"
        digest = write_random_file(payload, PAYLOAD_SIZE)
        url = lambda key: f"http://127.0.0.1:{tracker.http_port}/{key}/announce"  # noqa: E731
        seeder_torrent, leecher_torrent = tmp_path / "seeder.torrent", tmp_path / "leecher.torrent"
        v1, v2 = make_torrent(payload, url(SEEDER_PASSKEY), seeder_torrent, kind)
        assert make_torrent(payload, url(LEECHER_PASSKEY), leecher_torrent, kind) == (v1, v2)
        # The torrent's key: what its deltas carry.
        info_hash = v1 if v1 is not None else v2[:20]

        # The private tracker's registry, complete before it starts: both
        # users and the torrent (its hashes, known once created).
        registry_file = tmp_path / "registry.jsonl"
        registry = RegistryCLI(binary, f"file:{registry_file}")
        registry.put_user(SEEDER_USER_ID, SEEDER_PASSKEY)
        registry.put_user(LEECHER_USER_ID, LEECHER_PASSKEY)
        registry.put_torrent(v1, v2_info_hash=v2)
        with open(tracker.config_path, "a") as cfg:
            cfg.write(f"registry:\n  source: file:{registry_file}\n  users: registered\n"
                      "  torrents: registered\n")
        tracker.start()

        seeder = lt_peers("seeder")
        seeder.add_torrent(seeder_torrent, seed_dir)
        wait_until(lambda: (seeder.pump(), seeder.is_seeding())[1], 30, "seeder to verify its data",
                   on_timeout=seeder.describe)
        leech_dir = tmp_path / "leech"
        leech_dir.mkdir()
        leecher = lt_peers("leecher")
        leecher.add_torrent(leecher_torrent, leech_dir)
        nudge_at = [time.monotonic() + 1]

        def downloaded():
            seeder.pump()
            leecher.pump()
            st = leecher.status()
            if not st.is_seeding and st.num_peers == 0 and time.monotonic() > nudge_at[0]:
                nudge_at[0] = time.monotonic() + 1
                leecher.reannounce()
                seeder.reannounce()
            return st.is_seeding and sha256_file(leech_dir / payload.name) == digest

        wait_until(downloaded, 60, "leecher to download through privtrak",
                   on_timeout=lambda: seeder.describe() + "\n" + leecher.describe() + "\n" + tracker.describe())

        # A hybrid torrent was announced with both hashes, and the tracker
        # took both: the bytes below count once even so.
        for peer in (seeder, leecher):
            sent = announced_hashes(peer)
            assert len(sent) == (2 if kind == "hybrid" else 1), (kind, sent)
            assert all(ih["fails"] == 0 and ih["error"] == 0 for ih in sent), (kind, sent)

        # The leecher announces `completed`; then both stop, announcing their
        # final counters (event=stopped, always recorded with emit_stopped).
        leecher_user, seeder_user = LEECHER_USER_ID, SEEDER_USER_ID

        def completed_seen():
            leecher.pump()
            return any(d["event"] == "completed" and d["user_id"] == leecher_user
                       for d in tail_deltas(binary, broker.bootstrap, topic))

        wait_until(completed_seen, 30, "the leecher's completed delta in Kafka", interval=0.3,
                   on_timeout=tracker.describe)
        # No payload moves between two seeds: these are the counters of the stop announce.
        seeder.pump()
        leecher.pump()
        s_st, l_st = seeder.status(), leecher.status()
        client_seeder_up, client_leecher_down = s_st.total_payload_upload, l_st.total_payload_download
        seeder.handle.pause()
        leecher.handle.pause()

        def stopped_seen():
            seeder.pump()
            leecher.pump()
            deltas = tail_deltas(binary, broker.bootstrap, topic)
            users = {d["user_id"] for d in deltas if d["event"] == "stopped"}
            return deltas if {leecher_user, seeder_user} <= users else None

        deltas = wait_until(stopped_seen, 30, "both clients' stopped deltas in Kafka", interval=0.3,
                            on_timeout=tracker.describe)
        totals = per_user(deltas)
        print(f"\nFAULT-FIGURES real-clients-kafka[{kind}]: seeder_client_uploaded={client_seeder_up} "
              f"leecher_client_downloaded={client_leecher_down} kafka_seeder={totals.get(seeder_user)} "
              f"kafka_leecher={totals.get(leecher_user)} deltas={len(deltas)} payload={PAYLOAD_SIZE}")
        assert totals[seeder_user][0] == client_seeder_up, (totals, client_seeder_up)
        assert totals[leecher_user][1] == client_leecher_down, (totals, client_leecher_down)
        assert client_leecher_down >= PAYLOAD_SIZE
        # One download, one snatch: the leecher's, whichever hash said `completed`.
        snatches = [d for d in unique(deltas) if d["event"] == "completed"]
        assert [d["user_id"] for d in snatches] == [leecher_user], snatches
        ours = [d for d in deltas if d["user_id"] in (seeder_user, leecher_user)]
        assert all(d["info_hash"] == info_hash.hex() for d in ours), ours
        # Every delta is one of the two registered users': the passkeys were
        # mapped to their user ids, and the readiness probes (event=stopped
        # with an unregistered passkey) were refused silently, leaving no delta.
        assert ours == deltas, [d for d in deltas if d not in ours]
        assert not {d["user_id"] for d in deltas} & {SEEDER_PASSKEY, LEECHER_PASSKEY}

        # The ledger: the topic into PostgreSQL, the same figures there.
        seeder_key, leecher_key = bytes.fromhex(seeder_user), bytes.fromhex(leecher_user)
        ledger = LedgerProcess(binary, tmp_path, broker.bootstrap, topic, ledger_db).start()
        why = lambda: ledger_db.describe() + "\n" + ledger.describe()  # noqa: E731

        def applied():
            if not ledger.alive():
                raise AssertionError(f"privtrak ledger exited early\n{why()}")
            got = ledger_db.user_totals()
            return (got.get(seeder_key, (None, None))[0] == client_seeder_up
                    and got.get(leecher_key, (None, None))[1] == client_leecher_down)

        wait_until(applied, 60, "privtrak.user_totals to hold the clients' counters", interval=0.2,
                   on_timeout=why)
        ends = committed_ends(broker.bootstrap, topic)
        assert ends and sum(ends.values()) > 0, ends
        wait_until(lambda: ledger_db.offsets(topic) == ends, 15,
                   f"privtrak.partition_offsets to reach the topic's end {ends}", interval=0.2, on_timeout=why)
        rc = ledger.terminate(15)
        assert rc == 0, f"privtrak ledger: exit code {rc} after SIGTERM (None: still running after 15 s)\n{why()}"
        db_totals = ledger_db.user_totals()
        offsets = ledger_db.offsets(topic)
        print(f"FAULT-FIGURES real-clients-ledger[{kind}]: pg_seeder={db_totals.get(seeder_key)} "
              f"pg_leecher={db_totals.get(leecher_key)} offsets={offsets} topic_ends={ends}")
        assert offsets == ends, f"stored offsets {offsets} != the topic's ends {ends}\n{why()}"
        assert db_totals[seeder_key][0] == client_seeder_up, (db_totals, client_seeder_up, why())
        assert db_totals[leecher_key][1] == client_leecher_down, (db_totals, client_leecher_down, why())
        # Both users are the deltas' (the same totals as consumed above), no one else.
        assert db_totals == {bytes.fromhex(u): t for u, t in totals.items()}, (db_totals, totals, why())
        completed = ledger_db.completed_at(leecher_key, info_hash)
        assert completed, f"user_torrents.completed_at of the leecher on {info_hash.hex()}: {completed!r}\n{why()}"
        pg_snatches = ledger_db.snatches(info_hash)
        assert pg_snatches == 1, f"torrent_totals.snatches of {info_hash.hex()}: {pg_snatches}\n{why()}"
    finally:
        if ledger is not None:
            ledger.stop()
        if tracker is not None:
            tracker.stop()
        broker.stop()
