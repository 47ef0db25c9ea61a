"""The shipped HAProxy configuration (deploy/haproxy/haproxy.cfg, unchanged)
routes by the shard function privtrak checks: zlib's CRC-32 of the 20 decoded
bytes of the first `info_hash`, mod N.

Behind it, a stand-in tracker (one HTTP server, every shard's address) that
records what reaches it; the proxy names the shard it chose in
`X-Privtrak-Shard`. With N = 16 (4 bits of the checksum per request), for
thousands of hashes, NUL bytes, spaces, `+`, `~` and `%` among them, each sent
percent-encoded in four ways (upper- and lower-case hex, unreserved bytes raw
with a space as `+`, and a random mix per byte): the shard is
`zlib.crc32(hash) % 16` every time, the same for every encoding of one hash,
and the request line reaches the tracker byte for byte as the client sent
it, with the client's address (IPv4 or IPv6) in X-Forwarded-For.
`privtrak shard` agrees on v1 and v2 hashes. The proxy's own answers
(unknown path, missing or malformed info_hash) are bencoded failures, and a
start with a shard count its servers do not match is refused.
"""

from __future__ import annotations

import random
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Tuple

import pytest

from e2e_helpers import bdecode
from shard_support import (ENCODINGS, HOST4, HOST6, HTTP, PROXY_PORT, STUB_PORT, HAProxy, announce_target,
                           assert_ports_free, encode, privtrak_shard, proxy_environment, scrape_target,
                           shard_of)

COUNT = 16
PASSKEY = "0123456789abcdef0123456789abcdef"


class StubTracker:
    """Answers every GET with a bencoded announce answer (and /readyz with
    200), recording (path, X-Forwarded-For) of each request."""

    def __init__(self, port: int):
        self.seen: List[Tuple[str, str]] = []
        lock = threading.Lock()
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path != "/readyz":
                    with lock:
                        seen.append((self.path, self.headers.get("X-Forwarded-For", "")))
                body = b"d8:intervali60e5:peers0:e"
                # One write: head and body in one segment (no Nagle stall).
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer((HOST4, port), Handler)
        self.server.daemon_threads = True
        # The health checks close their connections with a reset: not news.
        self.server.handle_error = lambda request, address: None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "StubTracker":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def hashes_under_test(rng: random.Random) -> List[bytes]:
    """Random hashes, and hashes of the awkward bytes: NUL runs, space, `+`,
    `~`, `%`, `&`, `=`, `;`, `?`, `#`, `/`, high bytes."""
    crafted = [bytes(20), b"\x00" * 19 + b"\x01", b"\x01" + b"\x00" * 19, b" " * 20, b"+" * 20, b"~" * 20,
               b"%" * 20, b"\xff" * 20, b"&=;?#/ +~%\x00\x7f\x80\xfe\xff" + b"\x00" * 5]
    awkward = b"\x00\x00\x00 +~%&=;?#/\x7f\x80\xff"
    crafted += [bytes(rng.choice(awkward) for _ in range(20)) for _ in range(200)]
    crafted += [rng.randbytes(20) for _ in range(800)]
    return crafted


def test_proxy_routes_by_zlib_crc32_of_the_decoded_hash(tmp_path: Path, haproxy: str, privtrak_bin: str):
    assert_ports_free([PROXY_PORT, PROXY_PORT + 1, STUB_PORT])
    rng = random.Random(16)
    hashes = hashes_under_test(rng)
    env = proxy_environment([(f"{HOST4}:{STUB_PORT}", STUB_PORT)] * COUNT)
    proxy = HAProxy(tmp_path, env)
    with StubTracker(STUB_PORT) as stub:
        try:
            proxy.start()
            proxy.wait_shards({k: True for k in range(COUNT)})
            clients = {HOST4: HTTP(HOST4, PROXY_PORT), HOST6: HTTP(HOST6, PROXY_PORT)}
            shards_seen = set()
            sent = 0
            for n, raw in enumerate(hashes):
                expected = zlib.crc32(raw) % COUNT
                for style in ENCODINGS:
                    host = HOST6 if (n + len(style)) % 3 == 0 else HOST4
                    encoded = encode(raw, style, rng)
                    target = (announce_target(PASSKEY, encoded, b"-PS0001-routing00000") if n % 2 == 0
                              else scrape_target(PASSKEY, encoded, encode(rng.randbytes(20), "upper")))
                    reply = clients[host].get(target)
                    sent += 1
                    assert reply.status == 200, (raw.hex(), style, encoded, reply)
                    assert reply.shard == expected, (
                        f"{raw.hex()} sent as {encoded!r}: routed to shard {reply.shard}, "
                        f"zlib.crc32 % {COUNT} = {expected}")
                    path, forwarded = stub.seen[-1]
                    assert path == target, (path, target)
                    assert forwarded.split(",")[-1].strip() == host, (forwarded, host)
                    shards_seen.add(reply.shard)
            assert shards_seen == set(range(COUNT)), shards_seen
            assert len(stub.seen) == sent
            print(f"\nSHARD-FIGURES proxy-routing: {len(hashes)} hashes x {len(ENCODINGS)} encodings = {sent} "
                  f"requests, every one routed to zlib.crc32 % {COUNT}")

            # `privtrak shard` is the same function (v1: the hash; v2: its first 20 bytes).
            for raw in hashes[:8] + hashes[-8:]:
                assert privtrak_shard(privtrak_bin, COUNT, raw.hex()) == shard_of(raw, COUNT), raw.hex()
                v2 = raw + rng.randbytes(12)
                assert privtrak_shard(privtrak_bin, 3, v2.hex()) == shard_of(raw, 3), v2.hex()

            # The proxy's own answers: bencoded, nothing forwarded.
            before = len(stub.seen)
            http4 = clients[HOST4]
            for target, status, reason in [
                (f"/{PASSKEY}/announce?peer_id=x&port=1", 400, "missing info_hash"),
                (f"/{PASSKEY}/scrape", 400, "missing info_hash"),
                (f"/{PASSKEY}/announce?info_hash=%00%01", 400, "invalid info_hash: must be 20 bytes"),
                (f"/{PASSKEY}/announce?info_hash={'%zz' * 20}", 400, "invalid info_hash: must be 20 bytes"),
                (f"/{PASSKEY}/announce?info_hash={'A' * 21}", 400, "invalid info_hash: must be 20 bytes"),
                (f"/favicon.ico?info_hash={'A' * 20}", 404, "unknown path"),
                ("/", 404, "unknown path"),
            ]:
                reply = http4.get(target)
                assert (reply.status, reply.failure()) == (status, reason), (target, reply)
                assert "x-privtrak-shard" not in reply.headers, (target, reply.headers)
            assert len(stub.seen) == before, stub.seen[before:]
            # Every tracker path form is routed (privtrak's TrackerPath).
            key = encode(bytes(20), "upper")
            for path in ("/announce", f"/{PASSKEY}/announce", f"/announce/{PASSKEY}", "/scrape",
                         f"/{PASSKEY}/scrape", f"/scrape/{PASSKEY}"):
                reply = http4.get(f"{path}?info_hash={key}")
                assert (reply.status, reply.shard) == (200, shard_of(bytes(20), COUNT)), (path, reply)
            assert bdecode(reply.body) == {b"interval": 60, b"peers": b""}
        finally:
            proxy.stop()


@pytest.mark.parametrize("count, defined, message", [
    (3, 2, "TRACKER_SHARD_COUNT is 3: set TRACKER_SHARD_0 .. TRACKER_SHARD_2, and no more"),
    (2, 3, "TRACKER_SHARD_COUNT is 2: set TRACKER_SHARD_0 .. TRACKER_SHARD_1, and no more"),
    (17, 3, "TRACKER_SHARD_COUNT must be 1..16"),
])
def test_proxy_refuses_a_shard_count_its_servers_do_not_match(tmp_path: Path, haproxy: str, count: int,
                                                             defined: int, message: str):
    env = proxy_environment([(f"{HOST4}:{STUB_PORT}", STUB_PORT)] * defined, count=count)
    checked = HAProxy(tmp_path, env).check()
    output = checked.stdout.decode() + checked.stderr.decode()
    assert checked.returncode != 0 and message in output, output


def test_proxy_refuses_to_start_without_a_shard_count(tmp_path: Path, haproxy: str):
    env = proxy_environment([])
    del env["TRACKER_SHARD_COUNT"]
    checked = HAProxy(tmp_path, env).check()
    output = checked.stdout.decode() + checked.stderr.decode()
    assert checked.returncode != 0 and "TRACKER_SHARD_COUNT is not set" in output, output


def test_one_shard_routes_everything_to_it(tmp_path: Path, haproxy: str):
    """N = 1 (an unsharded tracker behind the same proxy): every hash to shard 0."""
    assert_ports_free([PROXY_PORT, PROXY_PORT + 1, STUB_PORT])
    proxy = HAProxy(tmp_path, proxy_environment([(f"{HOST4}:{STUB_PORT}", STUB_PORT)]))
    with StubTracker(STUB_PORT):
        try:
            proxy.start()
            proxy.wait_shards({0: True})
            client = HTTP(HOST4, PROXY_PORT)
            rng = random.Random(1)
            for _ in range(50):
                target = announce_target(PASSKEY, encode(rng.randbytes(20), "mixed", rng), b"-PS0001-one000000000")
                reply = client.get(target)
                assert (reply.status, reply.shard) == (200, 0), reply
        finally:
            proxy.stop()
