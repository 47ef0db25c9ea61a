"""Three privtrak instances, shard 0, 1 and 2 of 3, behind the shipped
HAProxy configuration (deploy/haproxy/haproxy.cfg, as is), with real
libtorrent clients on six private torrents (issue #16).

- The torrents are chosen so that every shard owns two (`privtrak shard
  --count 3`, checked against zlib): one v1-only, one v2-only and four hybrid
  ones (libtorrent's default, announced with both hashes), one of which has
  its v2 hash routed to a shard that does not own it (the tracker answers
  that announce with an empty success and counts it as an alias).
- Users (a registry file, `registered` users and torrents): a seeder of all
  six (one session, 127.0.0.1), a leecher of five (127.0.0.1), and a
  dual-stack leecher of the sixth whose torrent has an IPv4 and an IPv6
  announce URL (127.0.0.1 and ::1, both through the proxy): it announces
  every event twice, from two addresses, as qBittorrent does.
- Every leecher finishes (SHA-256 equal). Every user's bytes, summed over
  the three instances' delta logs (one delta once by its origin), equal what
  the clients counted, up and down: nothing is lost and nothing counted twice.
  Every delta is in the log of the shard that owns its torrent. The owner of
  the dual-stack torrent handed out the client under both addresses (::1
  can only have come from X-Forwarded-For: the proxy talks to the trackers
  over 127.0.0.1).
- No instance answered `wrong_shard` to traffic through the proxy (each
  one's /metrics), and each served announces.
- A request sent straight to an instance that does not own the torrent
  (HTTP announce, HTTP scrape, UDP announce) is refused with `wrong shard:`
  and counted there, exactly once each; the owner's UDP address serves it.
- One instance stopped: its torrents get a bencoded retry-later (503,
  Retry-After) from the proxy, at once and once the health checks have
  marked it down, over IPv4 and IPv6, while the other shards go on serving
  theirs and see none of its requests; restarted (snapshot restored), the
  proxy routes to it again.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from clients import lt, make_torrent
from e2e_helpers import sha256_file, udp_announce, write_random_file
from privtrak_cli import RegistryCLI
from shard_support import (CLIENT_PORT_BASE, HOST4, HOST6, HTTP, PROXY_ADMIN_PORT, PROXY_PORT, SHARD_ADMIN_BASE,
                           SHARD_PORT_BASE, STUB_PORT, UNUSED_PEER_PORT, HAProxy, LtSession, ShardTracker,
                           announce_target, assert_ports_free, encode, privtrak_shard, proxy_environment,
                           scrape_target, shard_of)
from support.common import wait_until

COUNT = 3
PAYLOAD_SIZE = 256 * 1024 + 512    # 17 pieces of 16 KiB, the last one short
TRANSFER_TIMEOUT = 90.0

# passkey (in the announce URL) -> the registry's user id (not the passkey's bytes)
SEED = ("5eed" * 8, "000000000000000000000000000005ee")
LEECH = ("1eec" * 8, "0000000000000000000000000000011e")
DUAL = ("d5a1" * 8, "00000000000000000000000000000d5a")
PROBE = ("b0be" * 8, "0000000000000000000000000000b0be")


@dataclass
class Torrent:
    name: str
    kind: str                    # v1 | hybrid | v2
    v1: Optional[bytes]
    v2: Optional[bytes]
    payload: Path
    digest: str
    files: Dict[str, Path]       # passkey -> .torrent announcing with it

    @property
    def key(self) -> bytes:
        """What the tracker keys it by (deltas, ownership): v1, else v2's first 20 bytes."""
        return self.v1 if self.v1 is not None else self.v2[:20]

    @property
    def shard(self) -> int:
        return shard_of(self.key, COUNT)

    @property
    def v2_route(self) -> Optional[int]:
        """The shard the proxy sends a hybrid's v2 announce to."""
        return shard_of(self.v2[:20], COUNT) if self.v1 is not None and self.v2 is not None else None


def announce_url(passkey: str, host: str = HOST4) -> str:
    h = f"[{host}]" if ":" in host else host
    return f"http://{h}:{PROXY_PORT}/{passkey}/announce"


def make_torrents(tmp: Path, binary: str) -> List[Torrent]:
    """Six torrents, two per shard: a v1-only, a v2-only, a hybrid whose v2
    announce goes to another shard, three more hybrids."""
    wanted = ["v1", "v2", "hybrid-alias"] + ["hybrid"] * 3
    per_shard = {k: 0 for k in range(COUNT)}
    torrents: List[Torrent] = []
    attempts = 0
    for want in wanted:
        while True:
            attempts += 1
            assert attempts < 400, f"no fitting torrent after {attempts} tries ({per_shard})"
            name = f"t{attempts:03d}"
            d = tmp / "seed" / name
            d.mkdir(parents=True)
            payload = d / f"{name}.bin"
            digest = write_random_file(payload, PAYLOAD_SIZE)
            kind = want.split("-")[0]
            seed_file = tmp / "torrents" / f"{name}-seed.torrent"
            seed_file.parent.mkdir(exist_ok=True)
            v1, v2 = make_torrent(payload, announce_url(SEED[0]), seed_file, kind)
            t = Torrent(name, kind, v1, v2, payload, digest, {SEED[0]: seed_file})
            if per_shard[t.shard] >= 2 or (want == "hybrid-alias" and t.v2_route == t.shard):
                continue
            for passkey in (LEECH[0], DUAL[0]):
                f = tmp / "torrents" / f"{name}-{passkey[:4]}.torrent"
                assert make_torrent(payload, announce_url(passkey), f, kind) == (v1, v2)
                t.files[passkey] = f
            per_shard[t.shard] += 1
            torrents.append(t)
            break
    # `privtrak shard` is the proxy's function (and zlib's), v1 and v2 hashes alike.
    for t in torrents:
        if t.v1 is not None:
            assert privtrak_shard(binary, COUNT, t.v1.hex()) == t.shard, t
        if t.v2 is not None:
            assert privtrak_shard(binary, COUNT, t.v2.hex()) == shard_of(t.v2[:20], COUNT), t
    assert sorted(per_shard.values()) == [2, 2, 2], per_shard
    return torrents


def unique(deltas: List[dict]) -> List[dict]:
    seen = {}
    for d in deltas:
        seen.setdefault((d["instance"], d["sequence"]), d)
    return list(seen.values())


def totals_by_user(deltas: List[dict]) -> Dict[str, Tuple[int, int]]:
    out: Dict[str, List[int]] = {}
    for d in unique(deltas):
        acc = out.setdefault(d["user_id"], [0, 0])
        acc[0] += d["uploaded"]
        acc[1] += d["downloaded"]
    return {u: (up, down) for u, (up, down) in out.items()}


def peers_of(reply: dict) -> set:
    """(address, port) of every compact peer in an announce answer."""
    import ipaddress
    out = set()
    p4, p6 = reply.get(b"peers", b""), reply.get(b"peers6", b"")
    for i in range(0, len(p4), 6):
        out.add((str(ipaddress.IPv4Address(p4[i:i + 4])), int.from_bytes(p4[i + 4:i + 6], "big")))
    for i in range(0, len(p6), 18):
        out.add((str(ipaddress.IPv6Address(p6[i:i + 16])), int.from_bytes(p6[i + 16:i + 18], "big")))
    return out


def test_three_shards_behind_haproxy(tmp_path: Path, privtrak_bin: str, haproxy: str, libtorrent_available):
    started = time.monotonic()
    assert_ports_free([PROXY_PORT, PROXY_ADMIN_PORT, STUB_PORT, UNUSED_PEER_PORT]
                      + [SHARD_PORT_BASE + i for i in range(COUNT)] + [SHARD_ADMIN_BASE + i for i in range(COUNT)]
                      + [CLIENT_PORT_BASE + i for i in range(3)])
    torrents = make_torrents(tmp_path, privtrak_bin)
    alias = next(t for t in torrents if t.kind == "hybrid" and t.v2_route != t.shard)
    dual_torrent = alias            # the dual-stack client leeches the alias hybrid
    leeched = [t for t in torrents if t is not dual_torrent]

    registry_path = tmp_path / "registry.jsonl"
    registry = RegistryCLI(privtrak_bin, f"file:{registry_path}")
    for passkey, user_id in (SEED, LEECH, DUAL, PROBE):
        registry.put_user(user_id, passkey)
    for t in torrents:
        registry.put_torrent(t.v1, v2_info_hash=t.v2)

    trackers = [ShardTracker(privtrak_bin, tmp_path, i, COUNT, registry_path) for i in range(COUNT)]
    proxy = HAProxy(tmp_path, proxy_environment([(f"{HOST4}:{t.port}", t.admin_port) for t in trackers]))
    sessions: List[LtSession] = []

    def why() -> str:
        return "\n".join([s.describe() for s in sessions] + [t.describe() for t in trackers] + [proxy.describe()])

    try:
        for t in trackers:
            t.start()
        for t in trackers:
            t.wait_ready()
        proxy.start()
        proxy.wait_shards({k: True for k in range(COUNT)})
        probe4, probe6 = HTTP(HOST4, PROXY_PORT), HTTP(HOST6, PROXY_PORT)

        def scrape(t: Torrent) -> dict:
            reply = probe4.get(scrape_target(PROBE[0], encode(t.key, "upper")))
            assert reply.status == 200 and reply.shard == t.shard, (t.name, reply)
            assert reply.failure() is None, (t.name, reply.failure())
            return reply.decoded()[b"files"].get(t.key, {})

        # The seeder first: every torrent's owner knows it before a leecher
        # asks. The dual-stack client's torrent too: its client's IPv6
        # `started` (counters 0) may land behind its IPv4 `completed`, which
        # privtrak tells from a restart by the client's `key` (one per
        # session, on both families): the bytes are credited once.
        seeder = LtSession("seeder", CLIENT_PORT_BASE)
        sessions.append(seeder)
        for t in torrents:
            seeder.add(t.name, t.files[SEED[0]], t.payload.parent)

        def seeded(ts: List[Torrent]):
            seeder.pump()
            return all(seeder.status(t.name).is_seeding for t in ts) and \
                all(scrape(t).get(b"complete", 0) >= 1 for t in ts)

        wait_until(lambda: seeded(torrents), 30, "the seeder to verify and announce six torrents", interval=0.2,
                   on_timeout=why)

        leecher = LtSession("leecher", CLIENT_PORT_BASE + 1)
        dual = LtSession("dual", CLIENT_PORT_BASE + 2, dual_stack=True)
        sessions += [leecher, dual]
        for t in leeched:
            d = tmp_path / "leech" / t.name
            d.mkdir(parents=True)
            leecher.add(t.name, t.files[LEECH[0]], d)
        d = tmp_path / "dual" / dual_torrent.name
        d.mkdir(parents=True)
        dual.add(dual_torrent.name, dual_torrent.files[DUAL[0]], d,
                 extra_trackers=[announce_url(DUAL[0], HOST6)])
        downloads = [(leecher, t) for t in leeched] + [(dual, dual_torrent)]
        nudge_at = {t.name: time.monotonic() + 2 for t in torrents}

        def finished():
            for s in sessions:
                s.pump()
            done = True
            for session, t in downloads:
                st = session.status(t.name)
                if st.is_seeding and sha256_file(Path(st.save_path) / t.payload.name) == t.digest:
                    continue
                done = False
                if st.num_peers == 0 and time.monotonic() > nudge_at[t.name]:
                    nudge_at[t.name] = time.monotonic() + 2
                    session.handles[t.name].force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
                    seeder.handles[t.name].force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
            return done

        wait_until(finished, TRANSFER_TIMEOUT, "every leecher to download its torrents through the proxy",
                   interval=0.2, on_timeout=why)
        transfer_s = time.monotonic() - started

        # Every announce was answered without error: v1 and v2 hash of a
        # hybrid, and the dual-stack client from 127.0.0.1 and from ::1.
        for session, names in ((seeder, [t.name for t in torrents]), (leecher, [t.name for t in leeched]),
                               (dual, [dual_torrent.name])):
            for name in names:
                sent = session.announces(name)
                t = next(x for x in torrents if x.name == name)
                versions = {a["version"] for a in sent}
                assert versions == {"v1": {1}, "v2": {2}, "hybrid": {1, 2}}[t.kind], (session.name, name, sent)
                assert all(a["fails"] == 0 and a["error"] == 0 for a in sent), (session.name, name, sent)
        locals_ = {a["local"] for a in dual.announces(dual_torrent.name)}
        assert {HOST4, HOST6} <= locals_, dual.announces(dual_torrent.name)

        # The owner keeps a peer under the address of its last announce (a
        # dual-stack client's two announces race). With one of its two URLs
        # at a time, the client is handed out as [::1] after announcing over
        # IPv6 (which can only come from X-Forwarded-For: the proxy reaches
        # the trackers over IPv4), and as 127.0.0.1 after IPv4.
        handle = dual.handles[dual_torrent.name]
        urls = [entry["url"] for entry in handle.trackers()]
        assert sorted(urls) == sorted(announce_url(DUAL[0], h) for h in (HOST4, HOST6)), urls
        handed_out: list = []

        def peers_now() -> set:
            # As a leecher (a seeder is handed only leechers); over both families.
            got = set()
            for probe in (probe4, probe6):
                reply = probe.get(announce_target(PROBE[0], encode(dual_torrent.key, "upper"),
                                                  b"-PS0001-dualprobe000", event="started", left=PAYLOAD_SIZE))
                assert reply.failure() is None, reply.failure()
                got |= peers_of(reply.decoded())
            handed_out[:] = [got]
            return got

        for host in (HOST6, HOST4):
            handle.replace_trackers([{"url": announce_url(DUAL[0], host), "tier": 0}])
            nudge = [0.0]

            def handed_out_as(address: str = host) -> bool:
                dual.pump()
                if time.monotonic() > nudge[0]:
                    nudge[0] = time.monotonic() + 2
                    handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
                return (address, dual.port) in peers_now()

            wait_until(handed_out_as, 20, f"the dual-stack client handed out as {host} after announcing "
                       f"to {announce_url('…', host)} only", interval=0.2,
                       on_timeout=lambda: f"peers handed out: {handed_out}\n{why()}")
        handle.replace_trackers([{"url": u, "tier": 0} for u in urls])
        assert probe4.get(announce_target(PROBE[0], encode(dual_torrent.key, "upper"),
                                          b"-PS0001-dualprobe000", event="stopped",
                                          left=PAYLOAD_SIZE)).failure() is None

        def all_deltas() -> List[dict]:
            out = []
            for tr in trackers:
                out += [dict(d, _shard=tr.index) for d in tr.deltas()]
            return out

        leech_pairs = {(LEECH[1], t.key.hex()) for t in leeched} | {(DUAL[1], dual_torrent.key.hex())}

        def completed():
            for s in sessions:
                s.pump()
            got = {(d["user_id"], d["info_hash"]) for d in all_deltas() if d["event"] == "completed"}
            return leech_pairs <= got

        wait_until(completed, 30, "every leecher's completed delta", interval=0.3, on_timeout=why)

        # Nothing moves between seeds: these counters are those of the stop announces.
        clients: Dict[str, Tuple[int, int]] = {}
        for (passkey, user_id), session in ((SEED, seeder), (LEECH, leecher), (DUAL, dual)):
            session.pump()
            up = sum(session.status(n).total_payload_upload for n in session.handles)
            down = sum(session.status(n).total_payload_download for n in session.handles)
            clients[user_id] = (up, down)
        for s in sessions:
            for h in s.handles.values():
                h.pause()
        stop_pairs = {(SEED[1], t.key.hex()) for t in torrents} | leech_pairs

        def stopped():
            for s in sessions:
                s.pump()
            deltas = all_deltas()
            got = {(d["user_id"], d["info_hash"]) for d in deltas if d["event"] == "stopped"}
            return deltas if stop_pairs <= got else None

        deltas = wait_until(stopped, 30, "every client's stopped delta", interval=0.3, on_timeout=why)
        totals = totals_by_user([d for d in deltas if d["user_id"] != PROBE[1]])
        print(f"\nSHARD-FIGURES accounting: clients={clients} deltas={totals} "
              f"(deltas per shard {[sum(1 for d in deltas if d['_shard'] == i) for i in range(COUNT)]})")
        assert totals == clients, f"credited {totals} != clients' counters {clients}\n{why()}"
        assert clients[LEECH[1]][1] >= len(leeched) * PAYLOAD_SIZE and clients[DUAL[1]][1] >= PAYLOAD_SIZE
        # libtorrent's seeder and leechers may disagree by a block (seen once:
        # the seeder counted 512 bytes fewer sent than the leechers received),
        # so each user is held to its own client's counters, as above.
        assert clients[SEED[1]][0] >= (len(torrents) - 1) * PAYLOAD_SIZE, clients
        keys = {t.key.hex(): t for t in torrents}
        for d in deltas:
            assert d["info_hash"] in keys, d
            assert shard_of(bytes.fromhex(d["info_hash"]), COUNT) == d["_shard"], (
                f"a delta of {d['info_hash']} in shard {d['_shard']}'s log", d)
            assert d["user_id"] in {SEED[1], LEECH[1], DUAL[1], PROBE[1]}, d
        snatches = sorted((d["user_id"], d["info_hash"]) for d in unique(deltas) if d["event"] == "completed")
        assert snatches == sorted(leech_pairs), snatches

        # No request through the proxy reached a shard that does not own its torrent.
        for tr in trackers:
            m = tr.metrics()
            assert m.value("privtrak_requests_total", result="wrong_shard") == 0, (tr.name, m.text)
            assert m.value("privtrak_requests_total", protocol="http", request="announce", result="ok") > 0
            assert m.value("privtrak_requests_total", protocol="http", request="scrape", result="ok") > 0
            assert (m.value("privtrak_tracker_shard_index"), m.value("privtrak_tracker_shard_count")) == \
                (tr.index, COUNT)
        aliases = [tr.metrics().value("privtrak_shard_alias_announces_total") for tr in trackers]
        # The alias hybrid's v2 announces (seeder and dual-stack leecher, each at
        # least started and stopped) got an empty success where the proxy sent them.
        assert aliases[alias.v2_route] >= 4, aliases

        # A misrouted request, straight to a non-owner: refused and counted there.
        target = leeched[0]
        owner, other = target.shard, (target.shard + 1) % COUNT
        direct = HTTP(HOST4, trackers[other].port)
        reason = direct.get(announce_target(PROBE[0], encode(target.key, "upper"), b"-PS0001-misrouted000",
                                            event="started")).failure()
        assert reason and reason.startswith("wrong shard:") and f"shard {other} of {COUNT}" in reason, reason
        reason = direct.get(scrape_target(PROBE[0], encode(target.key, "upper"))).failure()
        assert reason and reason.startswith("wrong shard:"), reason
        # A scrape of its own torrent and a foreign one: the foreign one left out, not refused.
        own = next(t for t in torrents if t.shard == other)
        reply = direct.get(scrape_target(PROBE[0], encode(target.key, "upper"), encode(own.key, "lower")))
        assert reply.failure() is None and set(reply.decoded()[b"files"]) == {own.key}, reply
        udp = udp_announce(HOST4, trackers[other].port, target.key, url_path=f"/{PROBE[0]}/announce",
                           peer_id=b"-PS0001-misrouted000", peer_port=UNUSED_PEER_PORT, event="started")
        assert udp.get(b"failure reason", b"").startswith(b"wrong shard:"), udp
        # The owner's own UDP address (what a site hands out per shard) serves it.
        udp = udp_announce(HOST4, trackers[owner].port, target.key, url_path=f"/{PROBE[0]}/announce",
                           peer_id=b"-PS0001-misrouted000", peer_port=UNUSED_PEER_PORT, event="stopped")
        assert b"failure reason" not in udp and b"interval" in udp, udp
        for tr in trackers:
            m = tr.metrics()
            expected = {("http", "announce"): 1, ("http", "scrape"): 1, ("udp", "announce"): 1} \
                if tr.index == other else {}
            for proto in ("http", "udp"):
                for request in ("announce", "scrape"):
                    got = m.value("privtrak_requests_total", protocol=proto, request=request, result="wrong_shard")
                    assert got == expected.get((proto, request), 0), (tr.name, proto, request, got)

        # Shard loss: one instance stopped; its torrents get retry-later from
        # the proxy, never service elsewhere; the other shards go on.
        down = next(k for k in range(COUNT) if k != other)
        mine = [t for t in torrents if t.shard == down]
        theirs = [t for t in torrents if t.shard != down]
        wrong_before = [tr.metrics().value("privtrak_requests_total", result="wrong_shard") for tr in trackers]
        assert trackers[down].terminate() == 0, trackers[down].describe()

        def check_outage(label: str) -> None:
            for probe in (probe4, probe6):
                for t in mine:
                    for target in (announce_target(PROBE[0], encode(t.key, "lower"), b"-PS0001-outage000000"),
                                   scrape_target(PROBE[0], encode(t.key, "minimal"))):
                        reply = probe.get(target)
                        assert reply.status == 503 and reply.shard == down, (label, t.name, reply)
                        assert reply.headers.get("retry-after") == "60", (label, reply.headers)
                        assert reply.decoded() == {
                            b"failure reason": f"tracker shard {down} is unavailable, please retry later".encode(),
                            b"retry in": 1}, (label, reply)
                for t in theirs:
                    reply = probe.get(announce_target(PROBE[0], encode(t.key, "mixed", rng),
                                                      b"-PS0001-outage000000"))
                    assert reply.status == 200 and reply.shard == t.shard and reply.failure() is None, (label, reply)
                    assert b"interval" in reply.decoded(), (label, reply)
                    assert scrape(t).get(b"complete", 0) >= 0

        rng = random.Random(3)
        outage_at = time.monotonic()
        check_outage("before the health checks noticed")
        proxy.wait_shards({k: k != down for k in range(COUNT)})
        detected_s = time.monotonic() - outage_at
        check_outage("marked down by the health checks")
        for tr in trackers:
            if tr.index != down:
                assert tr.metrics().value("privtrak_requests_total", result="wrong_shard") == \
                    wrong_before[tr.index], tr.name

        # Back: the snapshot restored, the proxy routes to it again.
        trackers[down].start()
        restart_s = trackers[down].wait_ready()
        proxy.wait_shards({k: True for k in range(COUNT)})
        for t in mine:
            reply = probe6.get(announce_target(PROBE[0], encode(t.key, "upper"), b"-PS0001-outage000000"))
            assert reply.status == 200 and reply.failure() is None and reply.shard == down, reply
        print(f"SHARD-FIGURES three-shards: torrents per shard {[sum(t.shard == k for t in torrents) for k in range(COUNT)]} "
              f"alias announces {aliases} transfer {transfer_s:.1f}s shard {down} down detected by health checks "
              f"in {detected_s:.1f}s, restarted ready in {restart_s:.2f}s, total {time.monotonic() - started:.1f}s")
    finally:
        for s in sessions:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - teardown goes on
                pass
        proxy.stop()
        for t in trackers:
            t.stop()
