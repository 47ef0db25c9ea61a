"""End-to-end: real BitTorrent clients from Debian find each other ONLY through
the tracker under test (private torrents, so no DHT, PEX or LSD; both clients
have them off as well) and transfer a random file byte-exactly.

Run (see conftest.py for the environment variables):
    E2E_TRACKER=opentracker /usr/bin/python3 -m pytest tests/e2e -v
    PRIVTRAK_BIN=/path/to/privtrak /usr/bin/python3 -m pytest tests/e2e -v

About transmission-cli (3.00, Debian 12): it silently drops every peer in
127.0.0.0/8 that a TRACKER hands it (libtransmission's isMartianAddr treats
127/8 as unroutable; later versions allow loopback only for incoming, LPD and
resume peers). On loopback it therefore never dials out; it can only accept
incoming connections. So in both transmission tests the libtorrent side learns
transmission's listen port from the tracker and connects to it, which still
proves the whole tracker path: transmission announced its port, the tracker
stored it and handed it to the other peer.
Transmission also only re-evaluates its interest / choking every ~10 s, so a
transfer involving it takes ~10 s even on loopback.

privtrak runs as a private tracker (conftest.py): only the registered test
user's passkey and the registered torrent get in, and every delta it
publishes must carry the user id the registry maps that passkey to.
"""

from __future__ import annotations

import time
from pathlib import Path

from clients import NON_TRACKER_SOURCES, SOURCE_TRACKER, LtPeer, TransmissionCli, make_private_torrent
from e2e_helpers import sha256_file, write_random_file
from support.common import wait_until

PAYLOAD_SIZE = 768 * 1024  # 48 pieces of 16 KiB
TRANSFER_TIMEOUT = 60.0
SWARM_TIMEOUT = 30.0
DELTA_TIMEOUT = 15.0
NUDGE_EVERY = 1.0


class Swarm:
    """One random payload and its private torrent, announced to `announce_url`."""

    def __init__(self, tracker, tmp_path: Path, scheme: str):
        self.tracker = tracker
        self.announce_url = tracker.announce_url(scheme)
        self.seed_dir = tmp_path / "seed"
        self.seed_dir.mkdir()
        self.payload = self.seed_dir / "payload.bin"
        self.digest = write_random_file(self.payload, PAYLOAD_SIZE)
        self.torrent = tmp_path / "payload.torrent"
        self.info_hash = make_private_torrent(self.payload, self.announce_url, self.torrent)
        # Registered (privtrak: put-torrent) before any client announces it;
        # the tracker starts here, with the user and the torrent in its registry.
        tracker.allow(self.info_hash)

    def wait_counts(self, complete: int, incomplete: int, nudge=None, extra=None) -> dict:
        return self.tracker.wait_swarm(self.info_hash, complete, incomplete, timeout=SWARM_TIMEOUT,
                                       nudge=nudge, extra=extra)

    def check_deltas(self) -> None:
        """privtrak: the leecher's snatch reached the delta log, and every
        delta carries the registered user id, never the passkey's bytes:
        the registry mapped the passkey. Only this torrent has deltas (the
        readiness probes' random hashes were refused, silently)."""
        if self.tracker.kind != "privtrak":
            return
        ours = self.info_hash.hex()

        def snatched():
            deltas = self.tracker.deltas()
            return deltas if any(d["event"] == "completed" and d["info_hash"] == ours for d in deltas) else None

        deltas = wait_until(snatched, DELTA_TIMEOUT, f"the completed delta of {ours} in the delta log",
                            interval=0.2, on_timeout=self.tracker.describe)
        assert {d["user_id"] for d in deltas} == {self.tracker.user_id}, deltas
        assert self.tracker.user_id != self.tracker.passkey
        assert {d["info_hash"] for d in deltas} == {ours}, deltas
        # The leecher's counters telescope: its deltas up to the snatch add up to the payload.
        assert sum(d["downloaded"] for d in deltas) >= PAYLOAD_SIZE, deltas


def _every(seconds: float):
    """A callable that returns True at most once per `seconds`."""
    due = [time.monotonic() + seconds]

    def ready() -> bool:
        if time.monotonic() >= due[0]:
            due[0] = time.monotonic() + seconds
            return True
        return False

    return ready


def _describe(*things) -> str:
    return "\n".join(t.describe() for t in things)


def _start_lt_seeder(swarm: Swarm, lt_peers) -> LtPeer:
    """A libtorrent seeder that has verified its data and that the tracker
    lists as a seed (scrape complete=1 incomplete=0)."""
    seeder = lt_peers("seeder")
    seeder.add_torrent(swarm.torrent, swarm.seed_dir)

    def seeding():
        seeder.pump()
        return seeder.is_seeding()

    wait_until(seeding, SWARM_TIMEOUT, "libtorrent seeder to verify its data and seed", on_timeout=seeder.describe)
    assert [t["url"] for t in seeder.handle.trackers()] == [swarm.announce_url]
    swarm.wait_counts(1, 0, nudge=lambda: (seeder.pump(), seeder.reannounce()), extra=seeder.describe)
    return seeder


def _lt_to_lt(tracker, lt_peers, tmp_path: Path, scheme: str) -> None:
    swarm = Swarm(tracker, tmp_path, scheme)
    seeder = _start_lt_seeder(swarm, lt_peers)

    leech_dir = tmp_path / "leech"
    leech_dir.mkdir()
    leecher = lt_peers("leecher")
    leecher.add_torrent(swarm.torrent, leech_dir)
    target = leech_dir / swarm.payload.name
    nudge = _every(NUDGE_EVERY)
    started = time.monotonic()

    def downloaded():
        seeder.pump()
        leecher.pump()
        st = leecher.status()
        # Peer discovery is tracker-only: while the leecher has no peer, both
        # ask the tracker again (ignoring its min interval).
        if not st.is_seeding and st.num_peers == 0 and nudge():
            leecher.reannounce()
            seeder.reannounce()
        return st.is_seeding and sha256_file(target) == swarm.digest

    wait_until(downloaded, TRANSFER_TIMEOUT, f"libtorrent leecher to download via the {scheme} tracker",
               on_timeout=lambda: _describe(seeder, leecher, tracker))
    elapsed = time.monotonic() - started

    assert sha256_file(target) == swarm.digest
    assert leecher.status().total_payload_download >= PAYLOAD_SIZE
    assert [t["url"] for t in leecher.handle.trackers()] == [swarm.announce_url]
    assert leecher.tracker_replies >= 1 and seeder.tracker_replies >= 1, _describe(seeder, leecher)
    # Peers could only have come from the tracker.
    assert leecher.sources_seen & NON_TRACKER_SOURCES == 0, f"leecher peer sources {leecher.sources_seen:#x}"
    assert seeder.sources_seen & NON_TRACKER_SOURCES == 0, f"seeder peer sources {seeder.sources_seen:#x}"

    # The tracker saw the leecher complete: two seeds, no leechers.
    swarm.wait_counts(2, 0, nudge=lambda: (leecher.pump(), leecher.reannounce()), extra=leecher.describe)
    swarm.check_deltas()
    print(f"[{scheme}] {PAYLOAD_SIZE} bytes libtorrent -> libtorrent in {elapsed:.2f}s")


def test_libtorrent_leecher_downloads_from_libtorrent_seeder_over_http(tracker, lt_peers, tmp_path):
    _lt_to_lt(tracker, lt_peers, tmp_path, "http")


def test_libtorrent_leecher_downloads_from_libtorrent_seeder_over_udp(tracker, lt_peers, tmp_path):
    _lt_to_lt(tracker, lt_peers, tmp_path, "udp")


def _saw_peer(peer: LtPeer, port: int, client_prefix: str) -> bool:
    for p in peer.handle.get_peer_info():
        client = p.client.decode(errors="replace") if isinstance(p.client, bytes) else p.client
        if tuple(p.ip) == ("127.0.0.1", port) and client.startswith(client_prefix):
            return True
    return False


def test_transmission_leecher_downloads_from_libtorrent_seeder_over_http(tracker, lt_peers, transmission, tmp_path):
    swarm = Swarm(tracker, tmp_path, "http")
    seeder = _start_lt_seeder(swarm, lt_peers)

    tc: TransmissionCli = transmission(swarm.torrent, "transmission-leecher")
    tc.start()
    # transmission-cli announces itself (event=started, left>0): one leecher.
    swarm.wait_counts(1, 1, extra=tc.describe)

    target = tc.download_dir / swarm.payload.name
    nudge = _every(NUDGE_EVERY)
    saw_transmission = [False]
    started = time.monotonic()

    def downloaded():
        assert tc.alive(), "transmission-cli exited early\n" + tc.describe()
        seeder.pump()
        saw_transmission[0] |= _saw_peer(seeder, tc.port, "Transmission")
        # The seeder learns transmission's address only from the tracker.
        if seeder.status().num_peers == 0 and nudge():
            seeder.reannounce()
        return sha256_file(target) == swarm.digest

    wait_until(downloaded, TRANSFER_TIMEOUT, "transmission-cli to download from the libtorrent seeder",
               interval=0.2, on_timeout=lambda: _describe(seeder, tc, tracker))
    elapsed = time.monotonic() - started

    assert saw_transmission[0], "seeder never connected to transmission's announced port\n" + seeder.describe()
    assert seeder.sources_seen & NON_TRACKER_SOURCES == 0
    # transmission-cli verifies the data and announces event=completed.
    swarm.wait_counts(2, 0, extra=tc.describe)
    swarm.check_deltas()
    print(f"[http] {PAYLOAD_SIZE} bytes libtorrent -> transmission-cli in {elapsed:.2f}s")


def test_libtorrent_leecher_downloads_from_transmission_seeder_over_http(tracker, lt_peers, transmission, tmp_path):
    swarm = Swarm(tracker, tmp_path, "http")

    # transmission-cli seeds when the complete data is already in its download dir.
    tc: TransmissionCli = transmission(swarm.torrent, "transmission-seeder")
    (tc.download_dir / swarm.payload.name).write_bytes(swarm.payload.read_bytes())
    tc.start()
    swarm.wait_counts(1, 0, extra=tc.describe)

    leech_dir = tmp_path / "leech"
    leech_dir.mkdir()
    leecher = lt_peers("leecher")
    leecher.add_torrent(swarm.torrent, leech_dir)
    target = leech_dir / swarm.payload.name
    nudge = _every(NUDGE_EVERY)
    saw_transmission = [False]
    started = time.monotonic()

    def downloaded():
        assert tc.alive(), "transmission-cli exited early\n" + tc.describe()
        leecher.pump()
        saw_transmission[0] |= _saw_peer(leecher, tc.port, "Transmission")
        st = leecher.status()
        if not st.is_seeding and st.num_peers == 0 and nudge():
            leecher.reannounce()
        return st.is_seeding and sha256_file(target) == swarm.digest

    wait_until(downloaded, TRANSFER_TIMEOUT, "libtorrent leecher to download from the transmission-cli seeder",
               interval=0.2, on_timeout=lambda: _describe(leecher, tc, tracker))
    elapsed = time.monotonic() - started

    assert saw_transmission[0], "leecher never connected to transmission's announced port\n" + leecher.describe()
    assert leecher.sources_seen & SOURCE_TRACKER, f"leecher peer sources {leecher.sources_seen:#x}"
    assert leecher.sources_seen & NON_TRACKER_SOURCES == 0
    swarm.wait_counts(2, 0, nudge=lambda: (leecher.pump(), leecher.reannounce()), extra=leecher.describe)
    swarm.check_deltas()
    print(f"[http] {PAYLOAD_SIZE} bytes transmission-cli -> libtorrent in {elapsed:.2f}s")
