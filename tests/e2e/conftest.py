"""Fixtures for the end-to-end tests with real BitTorrent clients.

The tracker under test is chosen by environment variables:

  PRIVTRAK_BIN=/path/to/privtrak   run `privtrak serve --config CFG --http .. --udp ..`
  E2E_TRACKER=opentracker          run Debian's opentracker instead (harness development)

With neither set the tests FAIL (never skip): PRIVTRAK_BIN is required.
Optional:
  E2E_PASSKEY=<32 hex>             announce via /<passkey>/announce instead of /announce
  E2E_TRACKER_START_TIMEOUT=30     seconds to wait for the tracker to answer

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
from e2e_helpers import http_announce, http_scrape, udp_connect  # noqa: E402
from support.common import DeadlineExceeded, stop_process_group, tail, wait_until  # noqa: E402
from support.ports import free_port  # noqa: E402

HOST = "127.0.0.1"
START_TIMEOUT = float(os.environ.get("E2E_TRACKER_START_TIMEOUT", "30"))


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
    proc: Optional[subprocess.Popen] = None
    passkey: Optional[str] = None
    whitelist: Optional[Path] = None
    _allowed: List[str] = field(default_factory=list)

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

    # access control (opentracker only; privtrak with accounting disabled allows all)
    def allow(self, info_hash: bytes) -> None:
        if self.kind != "opentracker":
            return
        self._allowed.append(info_hash.hex())
        self.whitelist.write_text("".join(h + "\n" for h in self._allowed))
        self.proc.send_signal(signal.SIGHUP)
        url = self.announce_url("http")

        def authorized():
            return b"failure reason" not in http_announce(url, info_hash, event="stopped")

        wait_until(authorized, 10, f"opentracker to whitelist {info_hash.hex()} after SIGHUP",
                   on_timeout=self.describe)

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return f"--- tracker {self.kind} http:{self.http_port} udp:{self.udp_port} rc={rc}\n{tail(self.log_path)}"

    def stop(self) -> None:
        stop_process_group(self.proc, grace=5.0)


def _privtrak_config(workdir: Path, http_port: int, udp_port: int) -> Path:
    cfg = workdir / "privtrak.yaml"
    cfg.write_text(
        "http:\n"
        f"  listen: {HOST}:{http_port}\n"
        "udp:\n"
        f"  listen: {HOST}:{udp_port}\n"
        "sink:\n"
        f"  url: file:{workdir / 'deltas.ptdl'}\n"
        "accounting:\n"
        # With a passkey the accounting middleware runs as in production;
        # without one privtrak is a plain tracker (as opentracker).
        f"  enabled: {'true' if os.environ.get('E2E_PASSKEY', '').strip() else 'false'}\n"
        f"  snapshot_path: {workdir / 'snapshot.bin'}\n"
        "log:\n"
        f"  level: {os.environ.get('E2E_TRACKER_LOG_LEVEL', 'info')}\n"
    )
    return cfg


def _start_privtrak(binary: str, workdir: Path) -> TrackerUnderTest:
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"PRIVTRAK_BIN={binary!r} is not an executable file", pytrace=False)
    http_port, udp_port = free_port(), free_port()
    cfg = _privtrak_config(workdir, http_port, udp_port)
    t = TrackerUnderTest("privtrak", http_port, udp_port, workdir, workdir / "privtrak.log")
    # Every listener on a port of its own, none on a default: the admin
    # endpoint (default 127.0.0.1:9090) is off, HTTP and UDP get free ports,
    # so a tracker already running here (`make run`) cannot collide.
    cmd = [binary, "serve", "--config", str(cfg), "--http", f"{HOST}:{http_port}", "--udp", f"{HOST}:{udp_port}",
           "--admin", "off"]
    with open(t.log_path, "wb") as log:
        t.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=str(workdir), start_new_session=True)
    return t


def _start_opentracker(workdir: Path) -> TrackerUnderTest:
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
    t = TrackerUnderTest("opentracker", http_port, udp_port, workdir, workdir / "opentracker.log",
                         whitelist=whitelist)
    cmd = [exe, "-i", HOST, "-p", str(http_port), "-P", str(udp_port), "-f", str(conf)]
    with open(t.log_path, "wb") as log:
        t.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=str(root), start_new_session=True)
    return t


def _wait_ready(t: TrackerUnderTest) -> None:
    """Ready = a real HTTP announce gets a bencoded dict back AND a UDP BEP 15
    connect gets a connection id back. The probe announce uses event=stopped,
    so it never adds a peer."""
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
    """The tracker under test, started fresh for each test and always stopped."""
    binary = os.environ.get("PRIVTRAK_BIN", "").strip()
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

    workdir = tmp_path / "tracker"
    workdir.mkdir()
    t = _start_privtrak(binary, workdir) if binary else _start_opentracker(workdir)
    t.passkey = passkey
    try:
        _wait_ready(t)
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
