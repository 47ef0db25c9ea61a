"""Fault-suite harness: the real privtrak binary, a real Tansu broker, real
HTTP and UDP announces, a ground-truth ledger and an independent Kafka reader.

Nothing here sleeps to synchronise: every wait polls a real condition under a
deadline (`wait_until`). Pauses that ARE the fault (a broker frozen for 30 s)
are explicit in the tests.

Ground truth (the accounting rules of design.md): per (passkey, info_hash,
peer_id) entry the client's counters only grow; an announce that got a normal
response is ACCEPTED; a bencoded failure, a UDP error, a timeout or a refused
connection is not. The bytes the tracker must publish for an entry are
(counters of its last accepted announce) - (counters of its first accepted
announce): deltas telescope, a retry-later failure does not advance the
baseline, and an announce whose outcome the client never saw is covered by
the next accepted one. So every test ends with a settle round in which every
entry announces again until accepted.
"""

from __future__ import annotations

import http.client
import importlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

# The helpers both suites share (tests/support; conftest.py puts tests/ on sys.path).
from support.common import REPO, DeadlineExceeded, runtime_env, stop_process_group, tail, wait_until  # noqa: F401
from support.ports import HOST, free_port, port_in_use  # noqa: F401


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RSSSampler:
    """Samples a process's VmRSS on a thread until stopped; keeps the maximum."""

    def __init__(self, pid: int, every: float = 0.1):
        self.pid, self.every = pid, every
        self.samples: List[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(rss_kib(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.every)

    def __enter__(self) -> "RSSSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def max_kib(self) -> int:
        return max(self.samples) if self.samples else 0


# --------------------------------------------------------------------------
# Tansu
# --------------------------------------------------------------------------


def tansu_binary() -> Path:
    path = Path(os.environ.get("PRIVTRAK_TANSU") or REPO / ".runtime" / "bin" / "tansu")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"no Tansu broker at {path}: run scripts/setup and `. scripts/env.sh`")
    return path


class Broker:
    """One Tansu process on its own port (memory storage unless told)."""

    def __init__(self, port: int, workdir: Path, storage: str = "memory://tansu/",
                 extra_env: Optional[dict] = None):
        self.port, self.workdir, self.storage = port, workdir, storage
        self.extra_env = extra_env or {}
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.log_path = workdir / f"tansu-{port}.log"
        self.cluster_id = f"privtrak-faults-{port}"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> "Broker":
        if port_in_use(self.port):
            raise AssertionError(f"broker port {self.port} is already in use (a leftover broker? "
                                 f"`scripts/broker stop {self.port}`)")
        env = runtime_env()
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "SCHEMA_REGISTRY"):
            env.pop(name, None)
        env.update(self.extra_env)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"=== start {self.starts}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--cluster-id", self.cluster_id,
             "--listener-url", f"tcp://{HOST}:{self.port}",
             "--advertised-listener-url", f"tcp://{HOST}:{self.port}",
             "--storage-engine", self.storage],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        log.close()
        wait_until(self._answers, 20, f"Tansu to answer on {self.bootstrap}", on_timeout=self.describe)
        return self

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"Tansu exited with {self.proc.returncode}\n{self.describe()}")
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:  # Debian's python (tests/e2e): a TCP connect will do
            return port_in_use(self.port)
        # log_level 0: refused connects while Tansu starts are expected, not news.
        md = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0}).list_topics(timeout=1)
        return bool(md.brokers)

    def create_topic(self, topic: str, partitions: int = 3) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for _, future in admin.create_topics([NewTopic(topic, partitions, 1)]).items():
            future.result(timeout=10)

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process_group(self.proc)

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- tansu {self.bootstrap} rc={rc}\n{tail(self.log_path, 20)}"


class S3Store:
    """A moto S3 server (its own process, so a bucket outlives a broker restart)."""

    def __init__(self, port: int, workdir: Path, bucket: str = "tansu"):
        self.port, self.workdir, self.bucket = port, workdir, bucket
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = workdir / f"moto-{port}.log"
        self._client = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def broker_env(self) -> dict:
        """What Tansu's s3:// storage engine (object_store from env) needs."""
        return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT": self.endpoint,
                "AWS_ALLOW_HTTP": "true"}

    def get_json(self, key: str) -> Optional[dict]:
        """An object of the bucket as JSON (None if absent): Tansu's s3://
        engine keeps its metadata (producers, transactions) in
        clusters/<cluster>/meta.json, readable without the broker."""
        import boto3  # moto's own dependency, so present wherever moto is
        if self._client is None:
            env = self.broker_env()
            self._client = boto3.client("s3", endpoint_url=self.endpoint, region_name=env["AWS_DEFAULT_REGION"],
                                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        try:
            return json.loads(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self._client.exceptions.NoSuchKey:
            return None

    def start(self) -> "S3Store":
        if port_in_use(self.port):
            raise AssertionError(f"S3 port {self.port} is already in use")
        exe = Path(sys.executable).with_name("moto_server")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd + ["-H", HOST, "-p", str(self.port)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def bucket_made():
            if self.proc.poll() is not None:
                raise AssertionError(f"moto_server exited with {self.proc.returncode}: {tail(self.log_path)}")
            req = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
            with urllib.request.urlopen(req, timeout=1) as resp:
                return resp.status == 200

        wait_until(bucket_made, 30, f"moto S3 on {self.endpoint} to create bucket {self.bucket}",
                   interval=0.1, on_timeout=lambda: tail(self.log_path))
        return self

    def stop(self) -> None:
        stop_process_group(self.proc)


# --------------------------------------------------------------------------
# privtrak
# --------------------------------------------------------------------------

PROBE_PASSKEY = "f" * 32


class Tracker:
    """The privtrak binary with its own config file; restartable in place."""

    def __init__(self, binary: str, workdir: Path, *, bootstrap: str, topic: str, name: str = "privtrak",
                 accounting: Optional[dict] = None, kafka: Optional[dict] = None,
                 snapshot_path: Optional[Path] = None):
        self.binary, self.workdir, self.name = binary, workdir, name
        self.http_port, self.udp_port = free_port(), free_port()
        self.snapshot_path = snapshot_path or workdir / f"{name}-snapshot.bin"
        self.log_path = workdir / f"{name}.log"
        self.config_path = workdir / f"{name}.yaml"
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        acc = {"enabled": "true", "batch_size": 20, "flush_interval_s": 0.05,
               "max_pending_deltas": 5000, "max_pending_bytes": 2 << 20, "max_wait_s": 1,
               "snapshot_path": str(self.snapshot_path), "snapshot_interval_s": 0,
               "shutdown_drain_timeout_s": 5, "retry_in_minutes": 1}
        acc.update(accounting or {})
        kaf = {"transactional_id": f"faults-{name}-{os.getpid()}-{random.getrandbits(32):08x}",
               "linger_ms": 1, "compression": "zstd"}
        kaf.update(kafka or {})
        self.transactional_id = kaf["transactional_id"]
        self.accounting = acc
        # Every listener on a free port, none on a default (a `make run` here
        # holds 127.0.0.1:6969 and :9090; two instances would collide too).
        self.admin_port = free_port()
        lines = ["admin:", f"  listen: {HOST}:{self.admin_port}",
            "http:", f"  listen: {HOST}:{self.http_port}", "  idle_timeout_s: 60",
            "udp:", f"  listen: {HOST}:{self.udp_port}",
            f"  connection_id_secret: {'ab' * 16}",
            "tracker:", "  announce_interval_s: 60", "  min_announce_interval_s: 10",
            "sink:", f"  url: kafka://{bootstrap}/{topic}",
            "accounting:", *[f"  {k}: {v}" for k, v in acc.items()],
            "kafka:", *[f"  {k}: {v}" for k, v in kaf.items()],
            "log:", "  level: info",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def announce_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def start(self) -> "Tracker":
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise AssertionError(f"PRIVTRAK_BIN={self.binary!r} is not an executable file")
        self.starts += 1
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            log.write(f"=== {self.name} start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([self.binary, "serve", "--config", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=runtime_env(), cwd=str(self.workdir), start_new_session=True)
        wait_until(self._ready, 60, f"{self.name} to answer HTTP and UDP announces", interval=0.1,
                   on_timeout=self.describe)
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode} during start\n{self.describe()}")
        # event=stopped of an unknown entry: no peer, no delta.
        probe = Entry(PROBE_PASSKEY, b"\x00" * 20, b"-FT0000-probe0000000")
        status, _ = http_announce(self.http_port, probe, event="stopped", timeout=1)
        if status != "accepted":
            return False
        conn = udp_connect(self.udp_port, timeout=0.5)
        return conn is not None

    def terminate(self, timeout: float) -> Optional[int]:
        """SIGTERM; the exit code, or None if it did not exit within `timeout`."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: nothing more leaves the process (used for an instant
        around a broker kill, so an observer can catch up first)."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        stop_process_group(self.proc)

    def log(self, this_start_only: bool = True) -> str:
        text = self.log_path.read_bytes()
        if this_start_only:
            text = text[self.log_offset:]
        return text.decode(errors="replace")

    def wait_log(self, needle: str, timeout: float) -> str:
        def found():
            for line in self.log().splitlines():
                if needle in line:
                    return line
            return None
        return wait_until(found, timeout, f"{self.name} log line containing {needle!r}", interval=0.1,
                          on_timeout=self.describe)

    def admin_get(self, path: str) -> Tuple[int, str]:
        """GET on the admin port: (status, body)."""
        c = http.client.HTTPConnection(HOST, self.admin_port, timeout=5)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- {self.name} http:{self.http_port} udp:{self.udp_port} rc={rc}\n{tail(self.log_path, 40)}"


# --------------------------------------------------------------------------
# announces
# --------------------------------------------------------------------------


@dataclass
class Entry:
    """One client: (passkey, info_hash, peer_id) with counters that only grow."""
    passkey: str
    info_hash: bytes
    peer_id: bytes
    uploaded: int = 0
    downloaded: int = 0
    left: int = 1 << 30

    @property
    def key(self) -> Tuple[str, bytes, bytes]:
        return (self.passkey, self.info_hash, self.peer_id)


def http_announce(port: int, entry: Entry, event: Optional[str] = None, timeout: float = 10.0,
                  conn: Optional[http.client.HTTPConnection] = None) -> Tuple[str, str]:
    """One HTTP announce to /<passkey>/announce. Returns (outcome, detail):
    outcome is 'accepted', 'failure' (bencoded failure reason: detail) or
    'error' (no response seen: detail is the exception)."""
    q = {"info_hash": entry.info_hash, "peer_id": entry.peer_id, "port": "6881",
         "uploaded": str(entry.uploaded), "downloaded": str(entry.downloaded), "left": str(entry.left),
         "compact": "1", "numwant": "0"}
    if event:
        q["event"] = event
    path = f"/{entry.passkey}/announce?" + "&".join(
        f"{k}={urllib.parse.quote_from_bytes(v if isinstance(v, bytes) else v.encode())}" for k, v in q.items())
    own = conn is None
    c = conn or http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        body = c.getresponse().read()
    except Exception as exc:  # noqa: BLE001 - outcome unknown to the client
        c.close()
        return "error", repr(exc)
    finally:
        if own:
            c.close()
    if b"failure reason" in body[:40]:
        start = body.index(b"failure reason") + len(b"failure reason")
        colon = body.index(b":", start)
        n = int(body[start:colon])
        return "failure", body[colon + 1:colon + 1 + n].decode(errors="replace")
    if body.startswith(b"d") and b"interval" in body:
        return "accepted", ""
    return "error", f"unexpected body {body[:80]!r}"


UDP_PROTOCOL_ID = 0x41727101980
UDP_EVENTS = {None: 0, "completed": 1, "started": 2, "stopped": 3}


def udp_connect(port: int, timeout: float = 2.0, sock: Optional[socket.socket] = None) -> Optional[int]:
    tid = random.getrandbits(32)
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(struct.pack(">QII", UDP_PROTOCOL_ID, 0, tid), (HOST, port))
        while True:
            data, _ = s.recvfrom(2048)
            if len(data) >= 16 and struct.unpack(">II", data[:8]) == (0, tid):
                return struct.unpack(">Q", data[8:16])[0]
    except OSError:
        return None
    finally:
        if own:
            s.close()


def udp_announce(port: int, entry: Entry, sock: socket.socket, conn_id: int, event: Optional[str] = None,
                 timeout: float = 10.0) -> Tuple[str, str]:
    """One BEP 15 announce with the passkey path as BEP 41 URL data."""
    tid = random.getrandbits(32)
    packet = struct.pack(">QII20s20sQQQIIIiH", conn_id, 1, tid, entry.info_hash, entry.peer_id,
                         entry.downloaded, entry.left, entry.uploaded, UDP_EVENTS[event], 0,
                         random.getrandbits(32), 0, 6881)
    url = f"/{entry.passkey}/announce".encode()
    for i in range(0, len(url), 255):
        chunk = url[i:i + 255]
        packet += bytes([2, len(chunk)]) + chunk
    packet += b"\x00"
    try:
        sock.settimeout(timeout)
        sock.sendto(packet, (HOST, port))
        while True:
            data, _ = sock.recvfrom(4096)
            if len(data) >= 8 and struct.unpack(">I", data[4:8])[0] == tid:
                break
    except OSError as exc:
        return "error", repr(exc)
    action = struct.unpack(">I", data[:4])[0]
    if action == 1 and len(data) >= 20:
        return "accepted", ""
    if action == 3:
        return "failure", data[8:].decode(errors="replace")
    return "error", f"unexpected UDP reply action={action} len={len(data)}"


class Ledger:
    """Ground truth: first and last ACCEPTED counters of every entry."""

    def __init__(self):
        self._lock = threading.Lock()
        self.first: Dict[tuple, Tuple[int, int]] = {}
        self.last: Dict[tuple, Tuple[int, int]] = {}
        self.outcomes: Dict[str, int] = defaultdict(int)
        self.failures: Dict[str, int] = defaultdict(int)
        self.retry_later_latencies: List[float] = []
        self.completed: Dict[tuple, int] = defaultdict(int)
        # (monotonic time of the answer, entry key, up, down) of every accepted announce
        self.accepted_log: List[Tuple[float, tuple, int, int]] = []

    def record(self, entry: Entry, outcome: str, detail: str, latency: float, proto: str,
               event: Optional[str] = None) -> None:
        with self._lock:
            self.outcomes[f"{proto}:{outcome}"] += 1
            if outcome == "accepted":
                counters = (entry.uploaded, entry.downloaded)
                self.first.setdefault(entry.key, counters)
                self.last[entry.key] = counters
                self.accepted_log.append((time.monotonic(), entry.key, *counters))
                if event == "completed":
                    self.completed[entry.key] += 1
            elif outcome == "failure":
                self.failures[detail] += 1
                if "retry later" in detail:
                    self.retry_later_latencies.append(latency)

    def truth(self) -> Dict[str, Tuple[int, int]]:
        """Per user (passkey hex): (uploaded, downloaded) the tracker owes Kafka."""
        out: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
        with self._lock:
            for key, (up, down) in self.last.items():
                first_up, first_down = self.first[key]
                out[key[0]][0] += up - first_up
                out[key[0]][1] += down - first_down
        return {k: (v[0], v[1]) for k, v in out.items()}

    def accepted_count(self) -> int:
        return sum(v for k, v in self.outcomes.items() if k.endswith(":accepted"))

    def summary(self) -> str:
        return f"outcomes={dict(self.outcomes)} failures={dict(self.failures)}"


def make_entries(users: int, torrents: int, clients_per_user: int, seed: int) -> List[Entry]:
    rng = random.Random(seed)
    passkeys = [f"{rng.getrandbits(128):032x}" for _ in range(users)]
    hashes = [rng.getrandbits(160).to_bytes(20, "big") for _ in range(torrents)]
    entries = []
    for u, passkey in enumerate(passkeys):
        for c in range(clients_per_user):
            peer_id = b"-FT0001-" + f"{u:06d}{c:06d}".encode()
            entries.append(Entry(passkey, hashes[(u + c) % torrents], peer_id))
    return entries


class LoadDriver:
    """Worker threads that announce their own entries (one entry is never
    announced concurrently with itself) over HTTP and UDP until stopped."""

    def __init__(self, tracker: Tracker, entries: List[Entry], ledger: Ledger, workers: int = 6,
                 max_announces: int = 200_000, timeout: float = 10.0, seed: int = 1):
        self.tracker, self.entries, self.ledger = tracker, entries, ledger
        self.workers, self.max_announces, self.timeout = workers, max_announces, timeout
        self.stop_event = threading.Event()
        self.threads: List[threading.Thread] = []
        self.seed = seed
        self.sent = 0
        self._lock = threading.Lock()

    def _budget(self) -> bool:
        with self._lock:
            if self.sent >= self.max_announces:
                return False
            self.sent += 1
            return True

    def _run(self, worker: int) -> None:
        rng = random.Random(self.seed * 1000 + worker)
        mine = self.entries[worker::self.workers]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        conn_id = None
        httpc: Optional[http.client.HTTPConnection] = None
        try:
            while not self.stop_event.is_set() and self._budget():
                entry = rng.choice(mine)
                entry.uploaded += rng.randrange(0, 1 << 20)
                entry.downloaded += rng.randrange(1, 1 << 20)
                started = time.monotonic()
                if rng.random() < 0.5:
                    if httpc is None:
                        httpc = http.client.HTTPConnection(HOST, self.tracker.http_port, timeout=self.timeout)
                    outcome, detail = http_announce(self.tracker.http_port, entry, conn=httpc,
                                                    timeout=self.timeout)
                    if outcome == "error":
                        httpc = None
                    proto = "http"
                else:
                    if conn_id is None:
                        conn_id = udp_connect(self.tracker.udp_port, timeout=2.0, sock=sock)
                    if conn_id is None:
                        outcome, detail = "error", "no UDP connection id"
                    else:
                        outcome, detail = udp_announce(self.tracker.udp_port, entry, sock, conn_id,
                                                       timeout=self.timeout)
                        if outcome != "accepted" and "connection" in detail.lower():
                            conn_id = None
                        if outcome == "error":
                            conn_id = None
                    proto = "udp"
                self.ledger.record(entry, outcome, detail, time.monotonic() - started, proto)
                if outcome == "error" and self.stop_event.wait(0.02):
                    break  # tracker gone: do not spin on refused connections
        finally:
            sock.close()
            if httpc is not None:
                httpc.close()

    def start(self) -> "LoadDriver":
        for w in range(self.workers):
            t = threading.Thread(target=self._run, args=(w,), daemon=True, name=f"load-{w}")
            t.start()
            self.threads.append(t)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"

    def wait_accepted(self, count: int, timeout: float) -> None:
        base = self.ledger.accepted_count()
        wait_until(lambda: self.ledger.accepted_count() >= base + count, timeout,
                   f"{count} more accepted announces ({self.ledger.summary()})", interval=0.05,
                   on_timeout=self.tracker.describe)


def settle(tracker: Tracker, entries: List[Entry], ledger: Ledger, timeout: float = 60.0,
           event: Optional[str] = None) -> None:
    """Every entry announces (HTTP, alternating with UDP) until one is accepted,
    with counters that grew: the ledger's last accepted state is then also the
    tracker's, whatever happened to announces whose answer was never seen."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i, entry in enumerate(entries):
            entry.uploaded += 1000 + i
            entry.downloaded += 7 + i
            attempt = 0
            while True:
                started = time.monotonic()
                if (i + attempt) % 2 == 0:
                    outcome, detail = http_announce(tracker.http_port, entry, event=event)
                    proto = "http"
                else:
                    conn_id = udp_connect(tracker.udp_port, sock=sock)
                    outcome, detail = (udp_announce(tracker.udp_port, entry, sock, conn_id, event=event)
                                       if conn_id is not None else ("error", "no UDP connection id"))
                    proto = "udp"
                ledger.record(entry, outcome, detail, time.monotonic() - started, proto, event=event)
                if outcome == "accepted":
                    break
                attempt += 1
                if time.monotonic() > deadline:
                    raise DeadlineExceeded(f"settle: {entry.key} never accepted; last {outcome}: {detail}\n"
                                           f"{ledger.summary()}\n{tracker.describe()}")
                time.sleep(0.05)  # back off before retrying a refused announce
    finally:
        sock.close()


def establish(tracker: Tracker, entries: List[Entry], ledger: Ledger) -> None:
    """First announce (event=started) of every entry, accepted: the baselines."""
    settle(tracker, entries, ledger, event="started")


# --------------------------------------------------------------------------
# reading Kafka
# --------------------------------------------------------------------------

_PB = None


def delta_pb():
    """privtrak.v1.delta_pb2 compiled from schemas/ by protoc (as tests/python does)."""
    global _PB
    if _PB is None:
        sys.path.insert(0, str(REPO / "tests" / "python"))
        try:
            golden_support = importlib.import_module("golden_support")
        finally:
            sys.path.remove(str(REPO / "tests" / "python"))
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"privtrak-faults-pb-{os.getpid()}"
        out.mkdir(exist_ok=True)
        _PB = golden_support.compile_schema(out)
    return _PB


SENTINEL_TYPE = b"privtrak-faults.sentinel"


# --------------------------------------------------------------------------
# broker quirks (scripts/BROKER-NOTES.md): detected, recovered, logged
# --------------------------------------------------------------------------

# Every recovery of this test (conftest clears it before each test).
QUIRKS: List[Tuple[str, str]] = []


def quirk(case: str, detail: str) -> None:
    """Logs one greppable line per detected broker quirk and what the harness
    did about it: `BROKER-QUIRK <case>: <detail>`."""
    QUIRKS.append((case, detail))
    print(f"\nBROKER-QUIRK {case}: {detail}", flush=True)


def quirk_counts() -> Dict[str, int]:
    out: Dict[str, int] = defaultdict(int)
    for case, _ in QUIRKS:
        out[case] += 1
    return dict(out)


Origin = Tuple[int, int]


@dataclass
class TopicContents:
    deltas: List[dict] = field(default_factory=list)   # every delta record, in read order
    records: int = 0
    # (partition, offset) of every delta record read -> the origins it carries
    where: Dict[Tuple[int, int], List[Origin]] = field(default_factory=dict)
    recoveries: int = 0                                 # broker-side recoveries this read needed

    def unique(self) -> Dict[Origin, dict]:
        out: Dict[Origin, dict] = {}
        for d in self.deltas:
            origin = (d["instance"], d["sequence"])
            if origin in out and out[origin] != d:
                raise AssertionError(f"two different deltas share origin {origin}: {out[origin]} vs {d}")
            out.setdefault(origin, d)
        return out

    @property
    def duplicates(self) -> int:
        return len(self.deltas) - len(self.unique())

    def totals(self) -> Dict[str, Tuple[int, int]]:
        return totals_of(self.unique().values())

    def instances(self) -> Dict[int, int]:
        out: Dict[int, int] = defaultdict(int)
        for d in self.unique().values():
            out[d["instance"]] += 1
        return dict(out)


def totals_of(deltas: Iterable[dict]) -> Dict[str, Tuple[int, int]]:
    """Per user: (uploaded, downloaded) summed over `deltas` (already unique)."""
    out: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    for d in deltas:
        out[d["user"]][0] += d["uploaded"]
        out[d["user"]][1] += d["downloaded"]
    return {k: (v[0], v[1]) for k, v in out.items()}


def _delta_dict(msg) -> dict:
    return {"user": msg.user_id.hex(), "info_hash": msg.info_hash.hex(), "uploaded": msg.uploaded,
            "downloaded": msg.downloaded, "event": int(msg.event), "reset": msg.reset,
            "instance": msg.instance, "sequence": msg.sequence, "seeding": msg.seeding}


def decode_record(pb, msg) -> Optional[List[dict]]:
    """The deltas of one privtrak record; None for a harness sentinel."""
    kind = dict(msg.headers() or []).get("privtrak-type")
    if kind == SENTINEL_TYPE:
        return None
    if kind is None or kind == b"privtrak.v1.Delta":
        # Per-delta records carry no headers by default (kafka.delta_headers).
        d = pb.Delta()
        d.ParseFromString(msg.value())
        return [_delta_dict(d)]
    if kind == b"privtrak.v1.DeltaBatch":
        b = pb.DeltaBatch()
        b.ParseFromString(msg.value())
        return [_delta_dict(d) for d in b.deltas]
    raise AssertionError(f"record with unknown privtrak-type {kind!r} at {msg.partition()}/{msg.offset()}")


# Tansu answers a Fetch with nothing when its storage cannot produce a batch
# within the request's max wait: with s3:// storage (a LIST and a GET per
# batch) 20 ms made a read of 600 records take over 120 s (the "never reached
# their sentinel" failure of issue #11), 1000 ms reads them in 2 s. Reads end
# at a sentinel, not at a quiet period, so a long max wait costs nothing.
FETCH_WAIT_MS = 1000


class StuckPartitions(DeadlineExceeded):
    """read_committed never reached the sentinel of these partitions."""

    def __init__(self, message: str, partitions: List[int], sentinel_offsets: Dict[int, int],
                 positions: Dict[int, int]):
        super().__init__(message)
        self.partitions, self.sentinel_offsets, self.positions = partitions, sentinel_offsets, positions


def _partitions(bootstrap: str, topic: str) -> List[int]:
    from confluent_kafka import Producer
    md = Producer({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    partitions = sorted(md.topics[topic].partitions)
    if not partitions:
        raise AssertionError(f"topic {topic} has no partitions")
    return partitions


def produce_sentinels(bootstrap: str, topic: str, partitions: List[int], key: bytes = b"sentinel",
                      transactional_id: Optional[str] = None) -> Dict[int, int]:
    """One harness record (skipped by every reader) per partition; their offsets."""
    from confluent_kafka import Producer
    config = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0}
    if transactional_id:
        config["transactional.id"] = transactional_id
    producer = Producer(config)
    offsets: Dict[int, int] = {}
    errors: List[str] = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets[msg.partition()] = msg.offset()

    if transactional_id:
        producer.init_transactions(30)
        producer.begin_transaction()
    for p in partitions:
        producer.produce(topic, key=key, value=b"", partition=p,
                         headers=[("privtrak-type", SENTINEL_TYPE)], on_delivery=delivered)
    remaining = producer.flush(timeout=20)
    if transactional_id and not remaining and not errors:
        producer.commit_transaction(30)
    if remaining or errors or len(offsets) != len(partitions):
        raise AssertionError(f"sentinel produce to {topic} failed: remaining={remaining} errors={errors}")
    return offsets


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> TopicContents:
    """Every delta in `topic`, read_committed, from the beginning to the end.

    The end is exact, not a quiet period: a sentinel record is produced to
    every partition first, and reading stops when each partition's sentinel
    has been read. (Tansu's high watermark is not trusted: with s3:// storage
    it restarts low after a broker restart.) An open transaction left on a
    partition blocks its sentinel: StuckPartitions, never a short read
    (`read_topic_recovering` handles it).
    """
    from confluent_kafka import Consumer, TopicPartition

    pb = delta_pb()
    partitions = _partitions(bootstrap, topic)
    sentinel_offsets = produce_sentinels(bootstrap, topic, partitions)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"faults-{os.getpid()}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "fetch.wait.max.ms": FETCH_WAIT_MS, "enable.partition.eof": False})
    contents = TopicContents()
    done = set()
    positions: Dict[int, int] = {p: -1 for p in partitions}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        deadline = time.monotonic() + timeout
        while len(done) < len(partitions):
            if time.monotonic() > deadline:
                stuck = sorted(set(partitions) - done)
                raise StuckPartitions(
                    f"reading {topic}: partitions {stuck} never reached their sentinel within {timeout:.0f}s "
                    f"(sentinels at {sentinel_offsets}, last read {positions}); an open transaction blocks "
                    f"read_committed there", stuck, dict(sentinel_offsets), dict(positions))
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise AssertionError(f"consumer error: {msg.error()}")
            positions[msg.partition()] = msg.offset()
            deltas = decode_record(pb, msg)
            if deltas is None:
                if msg.offset() == sentinel_offsets[msg.partition()]:
                    done.add(msg.partition())
                continue
            contents.records += 1
            contents.deltas.extend(deltas)
            contents.where[(msg.partition(), msg.offset())] = [(d["instance"], d["sequence"]) for d in deltas]
    finally:
        consumer.close()
    return contents


def close_stale_transactions(bootstrap: str, transactional_id: str) -> None:
    """init_transactions with `transactional_id`: the broker ends (aborts) a
    transaction that id left open. Call only after every process using that
    id has exited (it fences them)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    p.init_transactions(30)
    p.flush(5)


def open_transactions(s3: "S3Store", cluster_id: str) -> List[dict]:
    """Tansu's own record (s3:// storage: meta.json) of every transaction
    epoch that is neither Committed nor Aborted, with the offsets it holds.
    Read_committed cannot pass the first offset of any of them (Tansu's
    last stable offset is the lowest `offset_start` of these)."""
    meta = s3.get_json(f"clusters/{cluster_id}/meta.json") or {}
    out = []
    for tid, txn in (meta.get("transactions") or {}).items():
        epochs = txn.get("epochs") or {}
        last = max((int(e) for e in epochs), default=None)
        for epoch, detail in epochs.items():
            state = detail.get("state")
            if state is None or state in ("Committed", "Aborted"):
                continue
            produces = {f"{topic}/{p}": (r["offset_start"], r["offset_end"])
                        for topic, parts in (detail.get("produces") or {}).items()
                        for p, r in parts.items() if r}
            if produces:
                out.append({"id": tid, "producer": txn.get("producer"), "epoch": int(epoch),
                            "last_epoch": int(epoch) == last, "state": state, "produces": produces})
    return out


def stable_offsets(s3: "S3Store", cluster_id: str, topic: str, partitions: List[int]) -> Dict[int, int]:
    """Per partition, Tansu's last stable offset computed as it does
    (offset_stage): the lowest first offset of an open transaction there,
    else the high watermark (watermark.json). s3:// storage only."""
    stable: Dict[int, int] = {}
    for p in partitions:
        wm = s3.get_json(f"clusters/{cluster_id}/topics/{topic}/partitions/{p:010d}/watermark.json") or {}
        stable[p] = int(wm.get("high") or 0)
    for txn in open_transactions(s3, cluster_id):
        for where, (start, _) in txn["produces"].items():
            t, _, p = where.rpartition("/")
            if t == topic and int(p) in stable:
                stable[int(p)] = min(stable[int(p)], int(start))
    return stable


def read_topic_recovering(broker: "Broker", topic: str, transactional_ids: Iterable[str],
                          s3: Optional["S3Store"] = None, attempts: int = 3,
                          stuck_after: float = 20.0) -> TopicContents:
    """read_topic, recovering on the broker's side when an open transaction
    blocks it (Tansu: transaction.timeout.ms is not enforced; a replaced
    producer's stale request or a broker kill can leave one open; a
    transaction can also stay in PrepareCommit/PrepareAbort for good when
    another overlapping one was still open at its end).

    Call only once every process using `transactional_ids` has exited. Each
    recovery round (at most `attempts`, each logged as BROKER-QUIRK
    open-transaction) calls init_transactions with those ids (and, on s3://
    storage, with every id whose last epoch Tansu's metadata shows in
    Begin), which aborts what they left open, then commits one harness
    transaction on the blocked partitions, which makes Tansu finalise the
    prepared transactions it overlaps. Then it reads again. The contents are
    never shortened: a read that stays blocked fails.
    """
    ids = list(dict.fromkeys(transactional_ids))
    for attempt in range(1, attempts + 2):
        try:
            contents = read_topic(broker.bootstrap, topic, timeout=stuck_after)
            contents.recoveries = attempt - 1
            if contents.duplicates:
                quirk("aborted-visible", f"{contents.duplicates} deltas of {topic} were read twice with the same "
                                         f"origin: copies from aborted transactions, which Tansu shows to "
                                         f"read_committed; counted once (deduplicated by origin)")
            return contents
        except StuckPartitions as exc:
            blocked = exc
        evidence = ""
        round_ids = list(ids)
        if s3 is not None:
            txns = open_transactions(s3, broker.cluster_id)
            evidence = "; Tansu metadata shows open: " + (", ".join(
                f"{t['id']} producer {t['producer']} epoch {t['epoch']} {t['state']} at {t['produces']}"
                for t in txns) or "none")
            round_ids += [t["id"] for t in txns if t["state"] == "Begin" and t["last_epoch"]]
            round_ids = list(dict.fromkeys(round_ids))
        if attempt > attempts:
            raise AssertionError(f"{blocked}\nstill blocked after {attempts} broker-side recoveries{evidence}")
        quirk("open-transaction",
              f"read_committed of {topic} blocked on partitions {blocked.partitions} (last read "
              f"{blocked.positions}, sentinels at {blocked.sentinel_offsets}){evidence}; recovery "
              f"{attempt}/{attempts}: init_transactions for {round_ids}, then a committed harness "
              f"transaction on partitions {blocked.partitions}, then read again")
        for tid in round_ids:
            close_stale_transactions(broker.bootstrap, tid)
        produce_sentinels(broker.bootstrap, topic, blocked.partitions, key=b"sweep",
                          transactional_id=f"faults-sweep-{os.getpid()}-{random.getrandbits(32):08x}")
    raise AssertionError("unreachable")


class CommittedTap:
    """A read_committed consumer that follows a topic on its own thread and
    remembers every delta it has seen committed, and where (partition,
    offset). It is the broker's own testimony, independent of privtrak:
    a delta the tap saw committed and a later full read no longer finds was
    dropped by the broker (Tansu's s3:// engine reuses offsets after a
    restart), never by the tracker."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap, self.topic = bootstrap, topic
        self.partitions = _partitions(bootstrap, topic)
        self.seen: Dict[Origin, dict] = {}
        self.where: Dict[Origin, Tuple[int, int]] = {}
        self.positions: Dict[int, int] = {p: 0 for p in self.partitions}
        self.errors: List[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="committed-tap")

    def start(self) -> "CommittedTap":
        self._thread.start()
        return self

    def _run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition
        pb = delta_pb()
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"faults-tap-{os.getpid()}",
                             "isolation.level": "read_committed", "enable.auto.commit": False,
                             "fetch.wait.max.ms": FETCH_WAIT_MS, "enable.partition.eof": False,
                             "log_level": 0})
        tps = [TopicPartition(self.topic, p, 0) for p in self.partitions]
        consumer.assign(tps)
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.02)
                if msg is not None and msg.error():
                    self.errors.append(str(msg.error()))
                elif msg is not None:
                    deltas = decode_record(pb, msg) or []
                    with self._lock:
                        for d in deltas:
                            origin = (d["instance"], d["sequence"])
                            self.seen.setdefault(origin, d)
                            self.where.setdefault(origin, (msg.partition(), msg.offset()))
                # The position passes control records (commit markers) too.
                positions = consumer.position(tps)
                with self._lock:
                    for tp in positions:
                        if tp.offset >= 0:
                            self.positions[tp.partition] = tp.offset
        finally:
            consumer.close()

    def caught_up(self, stable: Dict[int, int]) -> bool:
        with self._lock:
            return all(self.positions.get(p, 0) >= off for p, off in stable.items())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the tap consumer did not stop"

    def snapshot(self) -> Tuple[Dict[Origin, dict], Dict[Origin, Tuple[int, int]]]:
        with self._lock:
            return dict(self.seen), dict(self.where)


def compare(truth: Dict[str, Tuple[int, int]], got: Dict[str, Tuple[int, int]]) -> Dict[str, dict]:
    """Per-user differences (got - truth) where they are not equal."""
    out = {}
    for user in sorted(set(truth) | set(got)):
        t = truth.get(user, (0, 0))
        g = got.get(user, (0, 0))
        if t != g:
            out[user] = {"truth": t, "kafka": g, "diff": (g[0] - t[0], g[1] - t[1])}
    return out


def report(name: str, **figures) -> None:
    """One greppable line of figures per test (pytest -s shows it; -rA keeps it)."""
    if QUIRKS:
        figures["broker_quirks"] = quirk_counts()
    text = " ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\nFAULT-FIGURES {name}: {text}", flush=True)


def read_until_totals(bootstrap: str, topic: str, truth: Dict[str, Tuple[int, int]],
                      timeout: float = 30.0) -> TopicContents:
    """For a tracker that is still running: its last deltas may still sit in
    an open batch, so re-read until the totals equal `truth` or `timeout`
    passes (then the last contents are returned for the caller to compare)."""
    deadline = time.monotonic() + timeout
    while True:
        contents = read_topic(bootstrap, topic)
        if not compare(truth, contents.totals()) or time.monotonic() > deadline:
            return contents
