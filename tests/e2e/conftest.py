"""Fixtures for the end-to-end tests with real BitTorrent clients.

The tracker under test is chosen by environment variables:

  PRIVTRAK_BIN=/path/to/privtrak   run `privtrak serve --config CFG --http .. --udp ..`
  E2E_TRACKER=opentracker          run Debian's opentracker instead (harness development)

With neither set the tests FAIL (never skip): PRIVTRAK_BIN is required.
Optional:
  E2E_PASSKEY=<32 hex>             the test user's passkey (privtrak; default DEFAULT_PASSKEY)
  E2E_TRACKER_START_TIMEOUT=30     seconds to wait for the tracker to answer

privtrak runs as a private tracker: accounting on (file sink), and a registry
file with `registry.users: registered` and `registry.torrents: registered`.
The test user (E2E_USER_ID, whose bytes differ from the passkey's, so a
delta's user_id proves the passkey was mapped) is put into the registry file
with `privtrak registry put-user` before the tracker starts; a test's torrent
is put with `privtrak registry put-torrent` by `tracker.allow(info_hash)`
once its .torrent exists, and the tracker starts then, with the whole
registry loaded (so the fixture yields a tracker that has not started yet).

Run with Debian's interpreter (python3-libtorrent is only importable there):
  /usr/bin/python3 -m pytest tests/e2e -v
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared `support` package

from clients import LT_IMPORT_ERROR, LtPeer, TransmissionCli  # noqa: E402
from e2e_helpers import http_announce, http_scrape, http_scrape_response, udp_connect  # noqa: E402
from privtrak_cli import RegistryCLI, failure_reason, tail_deltas  # noqa: E402
from support.common import DeadlineExceeded, stop_process_group, tail, wait_until  # noqa: E402
from support.ports import free_port  # noqa: E402

HOST = "127.0.0.1"
START_TIMEOUT = float(os.environ.get("E2E_TRACKER_START_TIMEOUT", "30"))
# privtrak's test user: the passkey in every announce URL, and the user id the
# registry maps it to (deliberately not the passkey's 16 bytes).
DEFAULT_PASSKEY = "0123456789abcdef0123456789abcdef"
E2E_USER_ID = "e2e0000000000000000000000000e2e1"


# --------------------------------------------------------------------------
# the tracker under test
# --------------------------------------------------------------------------


@dataclass
class TrackerUnderTest:
    kind: str  # "privtrak" | "opentracker"
    http_port: int
    udp_port: int
    workdir: Path
    log_path: Path
    cmd: List[str] = field(default_factory=list)
    cwd: Optional[Path] = None
    proc: Optional[subprocess.Popen] = None
    passkey: Optional[str] = None
    whitelist: Optional[Path] = None
    _allowed: List[str] = field(default_factory=list)
    # privtrak only
    binary: Optional[str] = None
    registry_path: Optional[Path] = None
    sink_path: Optional[Path] = None
    user_id: Optional[str] = None

    def start(self) -> None:
        """Starts the tracker and waits until it answers HTTP and UDP."""
        assert self.proc is None, "the tracker is already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=str(self.cwd), start_new_session=True)
        _wait_ready(self)

    # URLs -----------------------------------------------------------------
    def announce_url(self, scheme: str = "http", passkey: Optional[str] = "default") -> str:
        """Announce URL for `scheme` ('http' or 'udp'). passkey=None forces the plain
        /announce; the default uses E2E_PASSKEY when set."""
        key = self.passkey if passkey == "default" else passkey
        path = f"/{key}/announce" if key else "/announce"
        port = {"http": self.http_port, "udp": self.udp_port}[scheme]
        return f"{scheme}://{HOST}:{port}{path}"

    # swarm observation -----------------------------------------------------
    def scrape(self, info_hash: bytes) -> dict:
        return http_scrape(self.announce_url("http"), info_hash)

    def wait_swarm(
        self,
        info_hash: bytes,
        complete: int,
        incomplete: int,
        timeout: float = 30.0,
        nudge: Optional[Callable[[], None]] = None,
        extra: Optional[Callable[[], str]] = None,
    ) -> dict:
        """Poll HTTP scrape until the tracker reports exactly these counts.
        `nudge` (e.g. a client reannounce) is called about once per second."""
        last = {}
        next_nudge = [time.monotonic() + 1.0]

        def check():
            if nudge is not None and time.monotonic() >= next_nudge[0]:
                nudge()
                next_nudge[0] = time.monotonic() + 1.0
            last.clear()
            last.update(self.scrape(info_hash))
            return last if (last["complete"], last["incomplete"]) == (complete, incomplete) else None

        return wait_until(
            check, timeout, f"tracker scrape complete={complete} incomplete={incomplete} for {info_hash.hex()}",
            interval=0.2,
            on_timeout=lambda: f"last scrape: {last}\n{self.describe()}" + ("\n" + extra() if extra else ""),
        )

    # access control: privtrak's registry (put-torrent), opentracker's whitelist (SIGHUP)
    def allow(self, info_hash: bytes) -> None:
        """Lets `info_hash` be tracked, and starts the tracker if it has not
        started yet (the first torrent of a test is in the registry before
        the tracker reads it). Returns once the tracker serves the torrent."""
        if self.kind == "privtrak":
            RegistryCLI(self.binary, f"file:{self.registry_path}").put_torrent(info_hash)
        else:
            self._allowed.append(info_hash.hex())
            self.whitelist.write_text("".join(h + "\n" for h in self._allowed))
        if self.proc is None:
            self.start()
            # Loaded before the frontends bound: served from the first answer on.
            assert self.serves(info_hash), f"{info_hash.hex()} not served right after start\n{self.describe()}"
            return
        if self.kind == "opentracker":
            self.proc.send_signal(signal.SIGHUP)
        # privtrak's file watcher picks the change up (registry.file_poll_interval_s).
        wait_until(lambda: self.serves(info_hash), 10, f"{self.kind} to serve {info_hash.hex()}",
                   on_timeout=self.describe)

    def serves(self, info_hash: bytes) -> bool:
        """Whether the tracker tracks `info_hash` for the test user, asked
        without adding a peer: privtrak's scrape lists only torrents that may
        announce; opentracker answers a stopped announce of a hash off its
        whitelist with a failure."""
        url = self.announce_url("http")
        if self.kind == "privtrak":
            resp = http_scrape_response(url, info_hash)
            reason = failure_reason(resp)
            assert reason is None, f"scrape refused: {reason}"
            return info_hash in resp.get(b"files", {})
        return b"failure reason" not in http_announce(url, info_hash, event="stopped")

    def deltas(self) -> List[dict]:
        """privtrak: every delta in the file sink so far (`privtrak tail --json`)."""
        assert self.kind == "privtrak", "only privtrak publishes deltas"
        return tail_deltas(self.binary, f"file:{self.sink_path}")

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- tracker {self.kind} http:{self.http_port} udp:{self.udp_port} rc={rc}\n{tail(self.log_path)}"

    def stop(self) -> None:
        stop_process_group(self.proc, grace=5.0)


def _privtrak_config(workdir: Path, http_port: int, udp_port: int, registry: Path, sink: Path) -> Path:
    cfg = workdir / "privtrak.yaml"
    cfg.write_text(
        "http:\n"
        f"  listen: {HOST}:{http_port}\n"
        "udp:\n"
        f"  listen: {HOST}:{udp_port}\n"
        "sink:\n"
        f"  url: file:{sink}\n"
        "accounting:\n"
        "  enabled: true\n"
        f"  snapshot_path: {workdir / 'snapshot.bin'}\n"
        # A private tracker: only registered users' passkeys, only registered torrents.
        "registry:\n"
        f"  source: file:{registry}\n"
        "  users: registered\n"
        "  torrents: registered\n"
        "  file_poll_interval_s: 0.1\n"
        "log:\n"
        f"  level: {os.environ.get('E2E_TRACKER_LOG_LEVEL', 'info')}\n"
    )
    return cfg


def _privtrak(binary: str, workdir: Path, passkey: str) -> TrackerUnderTest:
    """privtrak configured, with the test user in its registry file; not started."""
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"PRIVTRAK_BIN={binary!r} is not an executable file", pytrace=False)
    http_port, udp_port = free_port(), free_port()
    registry, sink = workdir / "registry.jsonl", workdir / "deltas.ptdl"
    cfg = _privtrak_config(workdir, http_port, udp_port, registry, sink)
    RegistryCLI(binary, f"file:{registry}").put_user(E2E_USER_ID, passkey)
    # Every listener on a port of its own, none on a default: the admin
    # endpoint (default 127.0.0.1:9090) is off, HTTP and UDP get free ports,
    # so a tracker already running here (`make run`) cannot collide.
    cmd = [binary, "serve", "--config", str(cfg), "--http", f"{HOST}:{http_port}", "--udp", f"{HOST}:{udp_port}",
           "--admin", "off"]
    return TrackerUnderTest("privtrak", http_port, udp_port, workdir, workdir / "privtrak.log", cmd=cmd,
                            cwd=workdir, passkey=passkey, binary=binary, registry_path=registry, sink_path=sink,
                            user_id=E2E_USER_ID)


def _opentracker(workdir: Path) -> TrackerUnderTest:
    exe = shutil.which("opentracker")
    if not exe:
        pytest.fail("E2E_TRACKER=opentracker but opentracker is not installed (apt-get install opentracker)",
                    pytrace=False)
    # Debian's opentracker is built with WANT_ACCESSLIST_WHITE: only whitelisted
    # info-hashes may be announced (no open mode without recompiling). The list
    # is re-read on SIGHUP (see TrackerUnderTest.allow). Started as root it
    # chroots to tracker.rootdir and drops to user nobody (it refuses to run as
    # root), so the root dir must be traversable by nobody: pytest's tmp dirs are
    # 0700, but after chroot only the root dir's own mode matters.
    root = workdir / "opentracker-root"
    root.mkdir()
    os.chmod(root, 0o755)
    whitelist = root / "whitelist.txt"
    whitelist.write_text("")
    os.chmod(whitelist, 0o644)
    conf = root / "opentracker.conf"
    conf.write_text(f"access.whitelist whitelist.txt\ntracker.rootdir {root}\n")
    http_port, udp_port = free_port(), free_port()
    cmd = [exe, "-i", HOST, "-p", str(http_port), "-P", str(udp_port), "-f", str(conf)]
    return TrackerUnderTest("opentracker", http_port, udp_port, workdir, workdir / "opentracker.log", cmd=cmd,
                            cwd=root, whitelist=whitelist)


def _wait_ready(t: TrackerUnderTest) -> None:
    """Ready = a real HTTP announce gets a bencoded dict back AND a UDP BEP 15
    connect gets a connection id back. The probe announce uses event=stopped,
    so it never adds a peer (privtrak refuses its random hash, and answers a
    refused stop with a silent success: no peer, no delta)."""
    probe_hash = os.urandom(20)
    http_url = t.announce_url("http")

    def ready():
        if t.proc.poll() is not None:
            pytest.fail(f"tracker exited with {t.proc.returncode} before becoming ready\n{t.describe()}",
                        pytrace=False)
        http_announce(http_url, probe_hash, event="stopped", timeout=1.0)
        udp_connect(HOST, t.udp_port, timeout=0.5)
        return True

    error = None
    try:
        wait_until(ready, START_TIMEOUT, f"{t.kind} to answer HTTP announce and UDP connect",
                   interval=0.1, on_timeout=t.describe)
    except DeadlineExceeded as exc:
        error = str(exc)
    if error:
        pytest.fail(error, pytrace=False)


@pytest.fixture
def tracker(tmp_path: Path):
    """The tracker under test, fresh for each test and always stopped. It
    starts at the test's first `tracker.allow(info_hash)` (see the module
    docstring)."""
    binary = os.environ.get("PRIVTRAK_BIN", "").strip()
    # Absolute: privtrak runs with the test's temp dir as its working directory.
    binary = os.path.abspath(binary) if binary else binary
    choice = os.environ.get("E2E_TRACKER", "").strip().lower()
    passkey = os.environ.get("E2E_PASSKEY", "").strip() or None
    if binary and choice not in ("", "privtrak"):
        pytest.fail(f"set either PRIVTRAK_BIN or E2E_TRACKER={choice}, not both", pytrace=False)
    if not binary and choice != "opentracker":
        pytest.fail(
            "PRIVTRAK_BIN is required: set PRIVTRAK_BIN=/path/to/privtrak (the tracker under test), "
            "or E2E_TRACKER=opentracker to exercise the harness against Debian's opentracker.",
            pytrace=False,
        )
    if passkey and not re.fullmatch(r"[0-9a-f]{32}", passkey):
        pytest.fail(f"E2E_PASSKEY must be 32 lowercase hex digits, got {passkey!r}", pytrace=False)
    if passkey and not binary:
        pytest.fail("E2E_PASSKEY cannot be used with opentracker (it has no passkey paths)", pytrace=False)
    if passkey == E2E_USER_ID:
        pytest.fail(f"E2E_PASSKEY must differ from the test user's id {E2E_USER_ID}", pytrace=False)

    workdir = tmp_path / "tracker"
    workdir.mkdir()
    t = _privtrak(binary, workdir, passkey or DEFAULT_PASSKEY) if binary else _opentracker(workdir)
    try:
        yield t
    finally:
        t.stop()


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------


@pytest.fixture
def lt_peers():
    """Factory for libtorrent sessions; every session is closed at teardown."""
    if LT_IMPORT_ERROR is not None:
        pytest.fail(
            f"cannot import libtorrent ({LT_IMPORT_ERROR}); run under Debian's /usr/bin/python3 "
            f"with python3-libtorrent installed (this is {sys.executable})",
            pytrace=False,
        )
    peers: List[LtPeer] = []

    def make(name: str) -> LtPeer:
        p = LtPeer(name, free_port())
        peers.append(p)
        return p

    yield make
    for p in peers:
        try:
            p.close()
        except Exception:  # noqa: BLE001 - teardown must go on
            pass


@pytest.fixture
def transmission(tmp_path: Path):
    """Factory for transmission-cli processes; every one is killed at teardown."""
    procs: List[TransmissionCli] = []

    def make(torrent: Path, name: str = "transmission") -> TransmissionCli:
        workdir = tmp_path / name
        workdir.mkdir()
        tc = TransmissionCli(torrent, workdir, free_port())
        procs.append(tc)
        return tc

    yield make
    for tc in procs:
        tc.stop()
