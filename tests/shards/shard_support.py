"""Processes and probes of the shard tests: privtrak instances that each own
a third of the torrents, the shipped HAProxy configuration in front of them
(deploy/haproxy/haproxy.cfg, as is: only its environment differs), a
Prometheus text reader, raw HTTP requests with chosen percent-encodings, and
multi-torrent libtorrent sessions (IPv4, or dual-stack on 127.0.0.1 and ::1).

Every port is fixed inside 19740-19789 (listed below) and checked free
before a test starts. Nothing here sleeps to synchronise: every wait polls
a condition under a deadline (support.common.wait_until).
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from clients import _lt_settings, lt
from privtrak_cli import run_privtrak, tail_deltas
from support.common import REPO, runtime_env, stop_process_group, tail, wait_until

PROXY_CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"

# The ports of this suite (19740-19789 only).
PROXY_PORT = 19740          # HAProxy, on 127.0.0.1 and ::1
PROXY_ADMIN_PORT = 19741    # HAProxy /healthz and /metrics
STUB_PORT = 19742           # the routing test's stand-in tracker
SHARD_PORT_BASE = 19750     # shard i: HTTP and UDP on 19750 + i
SHARD_ADMIN_BASE = 19760    # shard i: admin (/readyz, /metrics) on 19760 + i
CLIENT_PORT_BASE = 19770    # libtorrent sessions: 19770 + n
UNUSED_PEER_PORT = 19789    # the port raw announces claim (nothing listens)

HOST4, HOST6 = "127.0.0.1", "::1"
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
UDP_SECRET = "ab" * 16


def shard_of(key: bytes, count: int) -> int:
    """The shard function every party shares: zlib CRC-32 of the 20-byte key mod N."""
    assert len(key) == 20, key
    return zlib.crc32(key) % count


def assert_ports_free(ports: Iterable[int]) -> None:
    """Fails naming the port if anything listens on one of `ports` (TCP, v4 or v6)."""
    busy = []
    for port in ports:
        for family, host in ((socket.AF_INET, HOST4), (socket.AF_INET6, HOST6)):
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.2)
                if s.connect_ex((host, port)) == 0:
                    busy.append(f"{host}:{port}")
    assert not busy, f"ports of tests/shards already in use (a leftover process?): {busy}"


# --------------------------------------------------------------------------
# percent-encodings
# --------------------------------------------------------------------------

def encode(raw: bytes, style: str, rng: Optional[random.Random] = None) -> str:
    """`raw` percent-encoded in one of the ways clients do it:
    upper    every byte %XX (upper-case hex)
    lower    every byte %xx (lower-case hex)
    minimal  unreserved bytes raw (`~` included), the rest %XX; a space as `+`
    mixed    per byte at random: raw if unreserved, %XX, %xx; a space as `+`
             or %20, `~` raw or %7E
    """
    out = []
    for b in raw:
        if style == "upper":
            out.append(f"%{b:02X}")
        elif style == "lower":
            out.append(f"%{b:02x}")
        elif style == "minimal":
            out.append("+" if b == 0x20 else chr(b) if b in UNRESERVED else f"%{b:02X}")
        elif style == "mixed":
            choices = [f"%{b:02X}", f"%{b:02x}"]
            if b in UNRESERVED:
                choices.append(chr(b))
            if b == 0x20:
                choices.append("+")
            out.append(rng.choice(choices))
        else:
            raise ValueError(style)
    return "".join(out)


ENCODINGS = ("upper", "lower", "minimal", "mixed")


# --------------------------------------------------------------------------
# raw HTTP
# --------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: Dict[str, str]
    body: bytes

    @property
    def shard(self) -> Optional[int]:
        value = self.headers.get("x-privtrak-shard")
        return None if value is None else int(value)

    def failure(self) -> Optional[str]:
        """The bencoded `failure reason`, or None (a plain bencoded answer)."""
        from e2e_helpers import bdecode
        decoded = bdecode(self.body)
        reason = decoded.get(b"failure reason") if isinstance(decoded, dict) else None
        return None if reason is None else reason.decode(errors="replace")

    def decoded(self) -> dict:
        from e2e_helpers import bdecode
        return bdecode(self.body)


class HTTP:
    """One keep-alive HTTP/1.1 connection (reopened after an error)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: Optional[http.client.HTTPConnection] = None

    def get(self, target: str) -> Reply:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("GET", target, headers={"User-Agent": "privtrak-shards-test/1"})
                r = self._conn.getresponse()
                body = r.read()
                headers = {k.lower(): v for k, v in r.getheaders()}
                if headers.get("connection", "").lower() == "close":
                    self.close()
                return Reply(r.status, headers, body)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed meanwhile: once more, fresh.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def announce_target(passkey: str, encoded_hash: str, peer_id: bytes, *, event: Optional[str] = "stopped",
                    left: int = 0, uploaded: int = 0, downloaded: int = 0,
                    port: int = UNUSED_PEER_PORT) -> str:
    """/<passkey>/announce?… with `encoded_hash` as given (already percent-encoded)."""
    q = (f"info_hash={encoded_hash}&peer_id={encode(peer_id, 'minimal')}&port={port}"
         f"&uploaded={uploaded}&downloaded={downloaded}&left={left}&compact=1&numwant=50")
    if event:
        q += f"&event={event}"
    return f"/{passkey}/announce?{q}"


def scrape_target(passkey: str, *encoded_hashes: str) -> str:
    return f"/{passkey}/scrape?" + "&".join(f"info_hash={h}" for h in encoded_hashes)


# --------------------------------------------------------------------------
# Prometheus text
# --------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """One scrape of a Prometheus text endpoint."""

    def __init__(self, text: str):
        self.text = text
        self.samples: List[Tuple[str, Dict[str, str], float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            if m:
                labels = dict(_LABEL.findall(m.group(2) or ""))
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def value(self, name: str, **labels: str) -> float:
        """The sum of every series of `name` whose labels include `labels` (0 if none)."""
        return sum(v for n, ls, v in self.samples
                   if n == name and all(ls.get(k) == want for k, want in labels.items()))

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.samples)


def http_text(host: str, port: int, path: str, timeout: float = 5.0) -> Tuple[int, str]:
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


# --------------------------------------------------------------------------
# privtrak shards
# --------------------------------------------------------------------------

class ShardTracker:
    """One privtrak instance, shard `index` of `count`: HTTP and UDP on
    19750 + index, admin on 19760 + index, a file sink and a snapshot of its
    own, the shared registry file; it believes X-Forwarded-For from the proxy
    (loopback, both families)."""

    def __init__(self, binary: str, workdir: Path, index: int, count: int, registry: Path):
        self.binary, self.index, self.count = binary, index, count
        self.name = f"shard{index}"
        self.dir = workdir / self.name
        self.dir.mkdir()
        self.port = SHARD_PORT_BASE + index
        self.admin_port = SHARD_ADMIN_BASE + index
        self.sink = self.dir / "deltas.ptdl"
        self.log_path = self.dir / "privtrak.log"
        self.config = self.dir / "privtrak.yaml"
        self.proc: Optional[subprocess.Popen] = None
        self.config.write_text(
            "http:\n"
            f"  listen: {HOST4}:{self.port}\n"
            "  trusted_proxies: [\"127.0.0.1\", \"::1\"]\n"
            "udp:\n"
            f"  listen: {HOST4}:{self.port}\n"
            f"  connection_id_secret: {UDP_SECRET}\n"
            "admin:\n"
            f"  listen: {HOST4}:{self.admin_port}\n"
            "tracker:\n"
            f"  shard_index: {index}\n"
            f"  shard_count: {count}\n"
            "  announce_interval_s: 60\n"
            "  min_announce_interval_s: 5\n"
            "sink:\n"
            f"  url: file:{self.sink}\n"
            "accounting:\n"
            "  enabled: true\n"
            "  emit_stopped: true\n"
            "  batch_size: 1\n"
            "  flush_interval_s: 0.05\n"
            f"  snapshot_path: {self.dir / 'snapshot.bin'}\n"
            "registry:\n"
            f"  source: file:{registry}\n"
            "  users: registered\n"
            "  torrents: registered\n"
            "  file_poll_interval_s: 0.1\n"
            "log:\n"
            "  level: info\n")

    def start(self) -> "ShardTracker":
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        with open(self.log_path, "ab") as log:
            log.write(f"=== {self.name} start\n".encode())
            log.flush()
            self.proc = subprocess.Popen([self.binary, "serve", "--config", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=runtime_env(), cwd=str(self.dir), start_new_session=True)
        return self

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n{self.describe()}")
        try:
            return http_text(HOST4, self.admin_port, "/readyz", timeout=1)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> float:
        """Polls /readyz until 200; returns the seconds it took."""
        started = time.monotonic()
        wait_until(self.ready, timeout, f"{self.name} /readyz 200", interval=0.05, on_timeout=self.describe)
        return time.monotonic() - started

    def metrics(self) -> Metrics:
        status, text = http_text(HOST4, self.admin_port, "/metrics")
        assert status == 200, f"{self.name} /metrics: {status}"
        return Metrics(text)

    def deltas(self) -> List[dict]:
        return tail_deltas(self.binary, f"file:{self.sink}")

    def terminate(self, timeout: float = 30) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        stop_process_group(self.proc)

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- {self.name} http/udp :{self.port} admin :{self.admin_port} rc={rc}\n{tail(self.log_path, 30)}"


# --------------------------------------------------------------------------
# HAProxy
# --------------------------------------------------------------------------

def haproxy_binary() -> str:
    exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    assert exe, "haproxy is not installed (scripts/setup installs Debian's haproxy)"
    return exe


def proxy_environment(shards: List[Tuple[str, int]], count: Optional[int] = None) -> Dict[str, str]:
    """The environment of deploy/haproxy/haproxy.cfg for shards [(host:port, admin port), …]."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACKER_SHARD_", "PROXY_"))}
    env["TRACKER_SHARD_COUNT"] = str(len(shards) if count is None else count)
    for i, (address, admin_port) in enumerate(shards):
        env[f"TRACKER_SHARD_{i}"] = address
        env[f"TRACKER_SHARD_{i}_ADMIN_PORT"] = str(admin_port)
    env["PROXY_BIND"] = f"{HOST4}:{PROXY_PORT},[{HOST6}]:{PROXY_PORT}"
    env["PROXY_ADMIN_BIND"] = f"{HOST4}:{PROXY_ADMIN_PORT}"
    return env


class HAProxy:
    """Debian's haproxy running deploy/haproxy/haproxy.cfg unchanged."""

    def __init__(self, workdir: Path, env: Dict[str, str]):
        self.workdir, self.env = workdir, env
        self.log_path = workdir / "haproxy.log"
        self.proc: Optional[subprocess.Popen] = None

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run([haproxy_binary(), "-c", "-f", str(PROXY_CONFIG)], env=self.env,
                              capture_output=True, timeout=30, stdin=subprocess.DEVNULL)

    def start(self) -> "HAProxy":
        checked = self.check()
        assert checked.returncode == 0, (f"haproxy -c refused {PROXY_CONFIG}:\n"
                                         f"{checked.stdout.decode()}{checked.stderr.decode()}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([haproxy_binary(), "-f", str(PROXY_CONFIG)], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.proc.returncode}\n{self.describe()}")
            return http_text(HOST4, PROXY_ADMIN_PORT, "/healthz", timeout=1)[0] == 200

        wait_until(answers, 20, "haproxy /healthz", interval=0.05, on_timeout=self.describe)
        return self

    def metrics(self) -> Metrics:
        status, text = http_text(HOST4, PROXY_ADMIN_PORT, "/metrics")
        assert status == 200, f"haproxy /metrics: {status}"
        return Metrics(text)

    def active_servers(self, shard: int) -> int:
        return int(self.metrics().value("haproxy_backend_active_servers", proxy=f"shard{shard}"))

    def wait_shards(self, up: Dict[int, bool], timeout: float = 30) -> None:
        """Until every shard in `up` has its server up (True) or down (False) by the health checks."""
        wait_until(lambda: all((self.active_servers(k) == 1) == want for k, want in up.items()), timeout,
                   f"haproxy health checks to see shards {up}", interval=0.1, on_timeout=self.describe)

    def stop(self) -> None:
        stop_process_group(self.proc)

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- haproxy rc={rc}\n{tail(self.log_path, 30)}"


# --------------------------------------------------------------------------
# libtorrent, several torrents per session
# --------------------------------------------------------------------------

class LtSession:
    """One libtorrent session (one user) with several torrents; listens on
    127.0.0.1, or on 127.0.0.1 and ::1 (`dual_stack`)."""

    def __init__(self, name: str, port: int, dual_stack: bool = False):
        settings = _lt_settings(name, port)
        if dual_stack:
            settings["listen_interfaces"] = f"{HOST4}:{port},[{HOST6}]:{port}"
        self.name, self.port, self.dual_stack = name, port, dual_stack
        self.session = lt.session(settings)
        self.handles: Dict[str, object] = {}   # torrent name -> handle
        self.log: List[str] = []
        self.tracker_log: List[str] = []

    def add(self, name: str, torrent: Path, save_path: Path, extra_trackers: Iterable[str] = ()) -> None:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(str(torrent))
        atp.save_path = str(save_path)
        handle = self.session.add_torrent(atp)
        for url in extra_trackers:
            handle.add_tracker({"url": url, "tier": 0})
        self.handles[name] = handle

    def pump(self) -> None:
        for a in self.session.pop_alerts():
            line = f"{time.monotonic():.3f} {type(a).__name__}: {a.message()}"
            self.log.append(line)
            if isinstance(a, lt.tracker_alert):
                self.tracker_log.append(line)

    def status(self, name: str):
        return self.handles[name].status()

    def announces(self, name: str) -> List[dict]:
        """Every (tracker URL, local endpoint, hash version) libtorrent announced on."""
        out = []
        for entry in self.handles[name].trackers():
            for endpoint in entry["endpoints"]:
                for version, ih in enumerate(endpoint["info_hashes"]):
                    if ih["start_sent"]:
                        out.append({"url": entry["url"], "local": str(endpoint["local_address"][0]),
                                    "version": version + 1, "fails": ih["fails"],
                                    "error": ih["last_error"]["value"], "message": ih["message"]})
        return out

    def describe(self) -> str:
        out = [f"--- libtorrent {self.name} :{self.port}{' (dual-stack)' if self.dual_stack else ''}"]
        try:
            self.pump()
            for name, h in self.handles.items():
                st = h.status()
                out.append(f"{name}: state={st.state} progress={st.progress:.3f} peers={st.num_peers} "
                           f"seeding={st.is_seeding} up={st.total_payload_upload} "
                           f"down={st.total_payload_download} error={st.errc.message()}")
                out.extend(f"    {a}" for a in self.announces(name))
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            out.append(f"(status unavailable: {exc!r})")
        out.append("tracker alerts:")
        out.extend(self.tracker_log[-40:])
        out.append("last alerts:")
        out.extend(self.log[-15:])
        return "\n".join(out)

    def close(self) -> None:
        try:
            for h in self.handles.values():
                if h.is_valid():
                    self.session.remove_torrent(h)
            self.session.pause()
        finally:
            self.handles = {}
            self.session = None


def privtrak_shard(binary: str, count: int, hex_hash: str) -> int:
    """`privtrak shard --count N HEX`."""
    return int(run_privtrak(binary, "shard", "--count", str(count), hex_hash).stdout.decode().strip())
