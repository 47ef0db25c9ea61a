"""The site registry end to end: the real privtrak binary in `registered` mode
(users and torrents), fed by a registry file or by the compacted Kafka
registry topics on a Tansu broker of its own, written only with the
`privtrak registry …` CLI, and probed with real HTTP and UDP announces
(e2e_helpers: bencoded `failure reason` over HTTP, BEP 15 error replies over
UDP). Deltas are read back with `privtrak tail --json --exit-at-end`.

  file source   refusals (`passkey not recognised`, `unregistered torrent`),
                a put picked up by the file watcher, a malformed line keeping
                the old state (logged with file and line), SIGHUP reloads
  Kafka source  the topics read to their end before the frontends bind and
                /readyz turns 200, passkey rotation and deletion in force
                within 2 s, a torrent's download factor in the next delta,
                the same state after a restart
  check-config  `registered` without a source, a registry file with a bad line

Nothing sleeps to synchronise: every wait is a bounded poll (wait_until).
Needs PRIVTRAK_BIN; the Kafka test also needs Tansu (scripts/setup) and
librdkafka >= 2.2 (.runtime/lib). Every listener and the broker get free
ports (never 19092, which `make test` uses).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))  # harness.Broker

from e2e_helpers import http_announce, udp_announce  # noqa: E402
from privtrak_cli import RegistryCLI, failure_reason, run_privtrak, tail_deltas  # noqa: E402
from support.common import runtime_env, stop_process_group, tail, wait_until  # noqa: E402
from support.ports import HOST, free_port  # noqa: E402

ACCEPTED = "accepted"
UNKNOWN_PASSKEY = "passkey not recognised"
UNREGISTERED_TORRENT = "unregistered torrent"

# User ids are never the passkeys' bytes: a delta's user_id proves the mapping.
ALICE_ID, ALICE_KEY = "000000000000000000000000000a11ce", "a1" * 16
BOB_ID, BOB_KEY = "00000000000000000000000000000b0b", "b0" * 16
BOB_KEY_ROTATED = "b1" * 16

START_TIMEOUT = float(os.environ.get("E2E_TRACKER_START_TIMEOUT", "30"))
RELOAD_TIMEOUT = 10.0  # a registry file change or SIGHUP taking effect
KAFKA_CHANGE_DEADLINE = 2.0  # README: a committed registry record is in force within 2 s


@pytest.fixture
def privtrak_bin() -> str:
    binary = os.environ.get("PRIVTRAK_BIN", "").strip()
    if not binary:
        pytest.fail("PRIVTRAK_BIN is required", pytrace=False)
    binary = os.path.abspath(binary)  # privtrak runs in the test's temp dir
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"PRIVTRAK_BIN={binary!r} is not an executable file", pytrace=False)
    return binary


class Privtrak:
    """privtrak serve with a registry, its own ports (admin included) and a
    file sink; restartable in place (same config, same delta log)."""

    def __init__(self, binary: str, workdir: Path, registry: str, *, poll_interval_s: float = 0.1,
                 registry_flag: bool = False):
        self.binary, self.workdir = binary, workdir
        self.http_port, self.udp_port, self.admin_port = free_port(), free_port(), free_port()
        self.sink = workdir / "deltas.ptdl"
        self.log_path = workdir / "privtrak.log"
        self.config_path = workdir / "privtrak.yaml"
        # registry_flag: the source comes from `serve --registry`, the file sets only the modes.
        source = [] if registry_flag else [f"  source: {registry}"]
        self.config_path.write_text("\n".join([
            "http:", f"  listen: {HOST}:{self.http_port}",
            "udp:", f"  listen: {HOST}:{self.udp_port}",
            "admin:", f"  listen: {HOST}:{self.admin_port}",
            "sink:", f"  url: file:{self.sink}",
            "accounting:", "  enabled: true", "  batch_size: 1", "  flush_interval_s: 0.05",
            "  record_peer_id: true", f"  snapshot_path: {workdir / 'snapshot.bin'}",
            "registry:", *source, "  users: registered", "  torrents: registered",
            f"  file_poll_interval_s: {poll_interval_s}",
            "log:", "  level: info",
        ]) + "\n")
        self.cmd = [binary, "serve", "--config", str(self.config_path)]
        if registry_flag:
            self.cmd += ["--registry", registry]
        self.proc: Optional[subprocess.Popen] = None
        self.log_offset = 0

    # process ------------------------------------------------------------------
    def start(self) -> "Privtrak":
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=runtime_env(), cwd=str(self.workdir), start_new_session=True)
        return self

    def readyz(self) -> Optional[int]:
        """The status of GET /readyz, or None while nothing listens."""
        c = http.client.HTTPConnection(HOST, self.admin_port, timeout=2)
        try:
            c.request("GET", "/readyz")
            return c.getresponse().status
        except OSError:
            return None
        finally:
            c.close()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> List[Optional[int]]:
        """Polls /readyz until 200; returns every status seen before."""
        seen: List[Optional[int]] = []

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"privtrak exited with {self.proc.returncode} during start\n{self.describe()}")
            status = self.readyz()
            if status == 200:
                return True
            seen.append(status)
            return False

        wait_until(ready, timeout, "privtrak /readyz to answer 200", interval=0.02, on_timeout=self.describe)
        return seen

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def sighup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        stop_process_group(self.proc)

    # announces ------------------------------------------------------------------
    def announce(self, passkey: str, info_hash: bytes, proto: str = "http", *, peer_id: bytes = b"-E2E001-registry0001",
                 event: Optional[str] = "started", downloaded: int = 0, left: int = 1 << 20) -> str:
        """One announce that would add a peer (never `stopped`: a refused stop
        is a silent success). Returns ACCEPTED or the failure reason."""
        if proto == "http":
            resp = http_announce(f"http://{HOST}:{self.http_port}/{passkey}/announce", info_hash, peer_id=peer_id,
                                 port=6881, left=left, event=event, downloaded=downloaded)
        else:
            resp = udp_announce(HOST, self.udp_port, info_hash, url_path=f"/{passkey}/announce", peer_id=peer_id,
                                peer_port=6881, left=left, event=event, downloaded=downloaded)
        reason = failure_reason(resp)
        if reason is not None:
            return reason
        assert b"interval" in resp, f"neither a failure nor an announce response: {resp!r}"
        return ACCEPTED

    # observation ------------------------------------------------------------------
    def log(self) -> str:
        """The log of the current start."""
        return self.log_path.read_bytes()[self.log_offset:].decode(errors="replace")

    def wait_log(self, *needles: str, timeout: float = RELOAD_TIMEOUT) -> str:
        """The first log line (of this start) containing every needle."""
        def found():
            return next((line for line in self.log().splitlines() if all(n in line for n in needles)), None)
        return wait_until(found, timeout, f"a privtrak log line containing {needles!r}", interval=0.05,
                          on_timeout=self.describe)

    def deltas(self, peer_id: Optional[bytes] = None) -> List[dict]:
        """The deltas of the file sink so far (of one peer id), in publishing order."""
        deltas = tail_deltas(self.binary, f"file:{self.sink}")
        if peer_id is not None:
            deltas = [d for d in deltas if d.get("peer_id") == peer_id.hex()]  # hex in JSON
        return deltas

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return (f"--- privtrak http:{self.http_port} udp:{self.udp_port} admin:{self.admin_port} rc={rc}\n"
                f"{tail(self.log_path, 40)}")


@pytest.fixture
def trackers():
    """Every Privtrak a test creates is stopped at teardown, whatever the outcome."""
    started: List[Privtrak] = []
    yield started
    for t in started:
        t.stop()


def _line_index(log: str, needle: str) -> int:
    for i, line in enumerate(log.splitlines()):
        if needle in line:
            return i
    raise AssertionError(f"no log line containing {needle!r} in:\n{log}")


def _bad_line(reg: Path) -> int:
    """Appends a line that does not parse (a user whose passkey is not hex);
    returns its line number."""
    number = len(reg.read_text().splitlines()) + 1
    with open(reg, "a") as f:
        f.write('{"type":"user","user_id":"%s","passkey":"not-a-passkey"}\n' % ("cc" * 16))
    return number


# --------------------------------------------------------------------------
# file source
# --------------------------------------------------------------------------


def test_file_registry_refuses_then_admits_after_a_put_and_a_bad_line_keeps_the_old_state(
        privtrak_bin, tmp_path, trackers):
    reg = tmp_path / "registry.jsonl"
    cli = RegistryCLI(privtrak_bin, f"file:{reg}")
    known_hash, new_hash = os.urandom(20), os.urandom(20)
    cli.put_user(ALICE_ID, ALICE_KEY)
    cli.put_torrent(known_hash)
    t = Privtrak(privtrak_bin, tmp_path, f"file:{reg}", poll_interval_s=0.1)
    trackers.append(t)
    t.start().wait_ready()

    for proto in ("http", "udp"):
        assert t.announce(ALICE_KEY, known_hash, proto) == ACCEPTED, proto
        # Unregistered passkey, unregistered torrent: the README's failure reasons.
        assert t.announce(BOB_KEY, known_hash, proto) == UNKNOWN_PASSKEY, proto
        assert t.announce(ALICE_KEY, new_hash, proto) == UNREGISTERED_TORRENT, proto
        assert t.announce(BOB_KEY, new_hash, proto) == UNKNOWN_PASSKEY, proto

    # Into the same file with the CLI; the watcher (poll 0.1 s) reloads it.
    cli.put_user(BOB_ID, BOB_KEY)
    cli.put_torrent(new_hash)
    wait_until(lambda: t.announce(BOB_KEY, new_hash) == ACCEPTED, RELOAD_TIMEOUT,
               "the same announce to be accepted once the registry file has the user and the torrent",
               interval=0.05, on_timeout=t.describe)
    assert t.announce(BOB_KEY, new_hash, "udp") == ACCEPTED
    assert t.announce(ALICE_KEY, new_hash, "udp") == ACCEPTED
    t.wait_log("registry file reloaded", "trigger=the file changed", "users=2", "torrents=2")

    # A malformed line: the reload fails, the old registry stays in force,
    # the log names the file and the line.
    bad = _bad_line(reg)
    line = t.wait_log("registry file not reloaded", f"registry file {reg} line {bad}")
    assert "previous registry stays in force" in line
    for proto in ("http", "udp"):
        assert t.announce(BOB_KEY, new_hash, proto) == ACCEPTED, proto
        assert t.announce(ALICE_KEY, known_hash, proto) == ACCEPTED, proto
        assert t.announce("cc" * 16, known_hash, proto) == UNKNOWN_PASSKEY, proto
    assert t.proc.poll() is None, t.describe()

    # The deltas carry the registered users' ids, not the passkeys' bytes.
    def bob_delta():
        t.announce(BOB_KEY, new_hash, downloaded=4096, peer_id=b"-E2E001-registry0002", event=None)
        return [d for d in t.deltas() if d["user_id"] == BOB_ID]

    t.announce(BOB_KEY, new_hash, peer_id=b"-E2E001-registry0002")  # the entry's first announce: no delta
    deltas = wait_until(bob_delta, RELOAD_TIMEOUT, "a delta of Bob's", interval=0.1, on_timeout=t.describe)
    assert deltas[0]["info_hash"] == new_hash.hex() and deltas[0]["downloaded"] == 4096, deltas
    assert {d["user_id"] for d in t.deltas()} <= {ALICE_ID, BOB_ID}


def test_file_registry_reloads_on_sighup(privtrak_bin, tmp_path, trackers):
    reg = tmp_path / "registry.jsonl"
    cli = RegistryCLI(privtrak_bin, f"file:{reg}")
    known_hash, new_hash = os.urandom(20), os.urandom(20)
    cli.put_user(ALICE_ID, ALICE_KEY)
    cli.put_torrent(known_hash)
    # No polling to speak of (the first check is an hour away): only SIGHUP reloads.
    t = Privtrak(privtrak_bin, tmp_path, f"file:{reg}", poll_interval_s=3600)
    trackers.append(t)
    t.start().wait_ready()
    assert t.announce(ALICE_KEY, known_hash) == ACCEPTED

    cli.put_torrent(new_hash)
    assert t.announce(ALICE_KEY, new_hash) == UNREGISTERED_TORRENT  # not reloaded: nothing polls
    t.sighup()
    wait_until(lambda: t.announce(ALICE_KEY, new_hash) == ACCEPTED, RELOAD_TIMEOUT,
               "the torrent to be accepted after SIGHUP", interval=0.05, on_timeout=t.describe)
    t.wait_log("registry file reloaded", "trigger=SIGHUP", "torrents=2")

    # A bad line and SIGHUP: not reloaded, named, the old state in force.
    good = reg.read_text()
    bad = _bad_line(reg)
    t.sighup()
    t.wait_log("registry file not reloaded", f"registry file {reg} line {bad}")
    assert t.announce(ALICE_KEY, new_hash) == ACCEPTED
    assert t.proc.poll() is None, t.describe()

    # Repaired, one more user, SIGHUP: in force.
    reg.write_text(good)
    cli.put_user(BOB_ID, BOB_KEY)
    assert t.announce(BOB_KEY, new_hash) == UNKNOWN_PASSKEY
    t.sighup()
    wait_until(lambda: t.announce(BOB_KEY, new_hash, "udp") == ACCEPTED, RELOAD_TIMEOUT,
               "Bob to be accepted after the repaired file's SIGHUP", interval=0.05, on_timeout=t.describe)


# --------------------------------------------------------------------------
# Kafka source
# --------------------------------------------------------------------------


REGISTRY_TOPICS = ["privtrak.registry.users", "privtrak.registry.torrents", "privtrak.registry.tokens",
                   "privtrak.registry.global", "privtrak.registry.clients"]


def _check_start(t: Privtrak, users: int, torrents: int) -> None:
    """The start that just became ready read the whole registry first: the
    read-to-the-end line (with every record's count) precedes both frontends'
    listening lines."""
    log = t.log()
    read = _line_index(log, "registry read to the end of its topics")
    read_line = log.splitlines()[read]
    assert f"users={users}" in read_line and f"torrents={torrents}" in read_line, read_line
    assert _line_index(log, "reading the registry topics") < read
    assert read < _line_index(log, "http frontend listening"), log
    assert read < _line_index(log, "udp frontend listening"), log


def test_kafka_registry_read_before_ready_rotation_deletion_factors_and_restart(privtrak_bin, tmp_path, trackers):
    from harness import Broker

    info_hash = os.urandom(20)
    broker = Broker(free_port(), tmp_path)
    try:
        broker.start()
        kafka = f"kafka://{broker.bootstrap}"
        cli = RegistryCLI(privtrak_bin, kafka)
        # The first put creates the five compacted topics.
        created = cli.put_user(ALICE_ID, ALICE_KEY).stderr.decode(errors="replace")
        for topic in REGISTRY_TOPICS:
            assert f"topic={topic}" in created and "created compacted registry topic" in created, created
        cli.put_torrent(info_hash)
        cli.put_user(BOB_ID, BOB_KEY)  # the last record written
        records = cli.records()
        assert {"type": "user", "user_id": BOB_ID, "passkey": BOB_KEY} in records, records
        assert {"type": "torrent", "info_hash": info_hash.hex(), "state": "active"} in records, records

        # Registered modes from the file, the source from `--registry`; the
        # topics are not created by the tracker (registry.create_topics: false).
        t = Privtrak(privtrak_bin, tmp_path, kafka, registry_flag=True)
        trackers.append(t)
        t.start().wait_ready()
        # The very first announces after /readyz=200: the whole registry is in force.
        assert t.announce(BOB_KEY, info_hash) == ACCEPTED, t.describe()
        assert t.announce(ALICE_KEY, info_hash, "udp") == ACCEPTED, t.describe()
        _check_start(t, users=2, torrents=1)

        # Passkey rotation: same user id, new passkey; the old one dies.
        cli.put_user(BOB_ID, BOB_KEY_ROTATED)
        wait_until(lambda: (t.announce(BOB_KEY, info_hash) == UNKNOWN_PASSKEY
                            and t.announce(BOB_KEY_ROTATED, info_hash) == ACCEPTED),
                   KAFKA_CHANGE_DEADLINE, "the rotated passkey to replace the old one",
                   interval=0.02, on_timeout=t.describe)
        assert t.announce(BOB_KEY_ROTATED, info_hash, "udp") == ACCEPTED
        assert t.announce(BOB_KEY, info_hash, "udp") == UNKNOWN_PASSKEY

        # Deletion (a tombstone): refused; Alice unaffected.
        cli.delete_user(BOB_ID)
        wait_until(lambda: t.announce(BOB_KEY_ROTATED, info_hash) == UNKNOWN_PASSKEY, KAFKA_CHANGE_DEADLINE,
                   "the deleted user to be refused", interval=0.02, on_timeout=t.describe)
        assert t.announce(ALICE_KEY, info_hash) == ACCEPTED

        # Bob back with the rotated passkey; one client of his, counters growing.
        cli.put_user(BOB_ID, BOB_KEY_ROTATED)
        wait_until(lambda: t.announce(BOB_KEY_ROTATED, info_hash) == ACCEPTED, KAFKA_CHANGE_DEADLINE,
                   "Bob to be accepted again", interval=0.02, on_timeout=t.describe)
        peer = b"-E2E001-factors00001"
        downloaded = [0]

        def announce_more() -> None:
            downloaded[0] += 1000
            assert t.announce(BOB_KEY_ROTATED, info_hash, peer_id=peer, event=None,
                              downloaded=downloaded[0]) == ACCEPTED

        assert t.announce(BOB_KEY_ROTATED, info_hash, peer_id=peer) == ACCEPTED  # first: no delta
        announce_more()
        before = wait_until(lambda: t.deltas(peer), RELOAD_TIMEOUT, "the delta before the factor change",
                            interval=0.05, on_timeout=t.describe)
        assert [d["downloaded"] for d in before] == [1000] and before[0]["user_id"] == BOB_ID, before
        assert "download_factor_percent" not in before[0], before  # absent = 100

        # Freeleech on the torrent: announce until a delta shows it; from the
        # first such delta on, every delta carries it.
        cli.put_torrent(info_hash, "--download-factor", "0")

        def freeleech_delta():
            announce_more()
            deltas = t.deltas(peer)
            return deltas if deltas[-1].get("download_factor_percent") == 0 else None

        deltas = wait_until(freeleech_delta, RELOAD_TIMEOUT, "a delta with download_factor_percent 0",
                            interval=0.05, on_timeout=t.describe)
        first = next(i for i, d in enumerate(deltas) if d.get("download_factor_percent") == 0)
        assert all("download_factor_percent" not in d for d in deltas[:first]), deltas
        assert all(d["download_factor_percent"] == 0 for d in deltas[first:]), deltas
        count = len(deltas)
        announce_more()
        nxt = wait_until(lambda: t.deltas(peer)[count:], RELOAD_TIMEOUT, "the next delta", interval=0.05,
                         on_timeout=t.describe)
        assert nxt[0]["download_factor_percent"] == 0 and nxt[0]["downloaded"] == 1000, nxt
        assert nxt[0]["user_id"] == BOB_ID, nxt

        # Restart: the topics are read to their end again before ready; the
        # rotated passkey and the factor hold.
        assert t.terminate() == 0, t.describe()
        count = len(t.deltas(peer))
        t.start().wait_ready()
        assert t.announce(BOB_KEY_ROTATED, info_hash) == ACCEPTED, t.describe()
        assert t.announce(BOB_KEY, info_hash) == UNKNOWN_PASSKEY
        assert t.announce(BOB_KEY, info_hash, "udp") == UNKNOWN_PASSKEY
        _check_start(t, users=2, torrents=1)
        announce_more()
        after = wait_until(lambda: t.deltas(peer)[count:], RELOAD_TIMEOUT, "the first delta after the restart",
                           interval=0.05, on_timeout=t.describe)
        assert after[0]["download_factor_percent"] == 0 and after[0]["user_id"] == BOB_ID, after
    finally:
        for t in trackers:
            t.stop()
        broker.stop()


# --------------------------------------------------------------------------
# check-config
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["registry.users", "registry.torrents"])
def test_check_config_refuses_registered_mode_without_a_source(privtrak_bin, tmp_path, key):
    cfg = tmp_path / "privtrak.yaml"
    section, name = key.split(".")
    cfg.write_text(f"{section}:\n  {name}: registered\n")
    out = run_privtrak(privtrak_bin, "check-config", str(cfg), check=False)
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert out.returncode == 2, text
    assert f"configuration error in {cfg}" in text, text
    assert "registry.source" in text and f"{key}: registered" in text, text


def test_check_config_names_the_registry_files_bad_line(privtrak_bin, tmp_path):
    reg = tmp_path / "registry.jsonl"
    cli = RegistryCLI(privtrak_bin, f"file:{reg}")
    cli.put_user(ALICE_ID, ALICE_KEY)
    cli.put_torrent(os.urandom(20))
    cfg = tmp_path / "privtrak.yaml"
    cfg.write_text(f"registry:\n  source: file:{reg}\n  users: registered\n  torrents: registered\n")
    good = run_privtrak(privtrak_bin, "check-config", str(cfg), check=False)
    text = (good.stdout + good.stderr).decode(errors="replace")
    assert good.returncode == 0 and f"registry file:{reg}" in text, text

    bad = _bad_line(reg)
    out = run_privtrak(privtrak_bin, "check-config", str(cfg), check=False)
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert out.returncode == 2, text
    assert f"registry file {reg} line {bad}" in text, text

    # serve refuses to start on it the same way (no frontend ever binds).
    ports = [free_port() for _ in range(3)]
    serve = run_privtrak(privtrak_bin, "serve", "--config", str(cfg), "--http", f"{HOST}:{ports[0]}",
                         "--udp", f"{HOST}:{ports[1]}", "--admin", f"{HOST}:{ports[2]}",
                         "--sink", f"file:{tmp_path / 'deltas.ptdl'}", check=False, timeout=30,
                         cwd=str(tmp_path))
    text = (serve.stdout + serve.stderr).decode(errors="replace")
    assert serve.returncode != 0, text
    assert f"registry file {reg} line {bad}" in text, text


# --------------------------------------------------------------------------
# the CLI's torrent hashes (issue #15)
# --------------------------------------------------------------------------


def test_registry_cli_puts_hybrid_and_v2_only_torrents_and_refuses_neither_hash(privtrak_bin, tmp_path):
    reg = tmp_path / "registry.jsonl"
    cli = RegistryCLI(privtrak_bin, f"file:{reg}")
    v1, v2, v2_only = "a1" * 20, "b2" * 32, "c3" * 32
    cli.put_torrent(v1, v2_info_hash=v2)
    cli.put_torrent(None, v2_info_hash=v2_only)
    # A token and a deletion name a torrent by either of its hashes.
    cli.put_user(ALICE_ID, ALICE_KEY)
    run_privtrak(privtrak_bin, "registry", "put-token", "--user-id", ALICE_ID, "--v2-info-hash", v2_only,
                 "--download-factor", "0", "--to", f"file:{reg}")
    torrents = {r.get("info_hash"): r for r in cli.records() if r["type"] == "torrent"}
    assert torrents[v1]["v2_info_hash"] == v2
    assert torrents[None]["v2_info_hash"] == v2_only, torrents
    tokens = [r for r in cli.records() if r["type"] == "token"]
    assert [t["info_hash"] for t in tokens] == [v2_only[:40]], tokens
    run_privtrak(privtrak_bin, "registry", "delete-torrent", "--v2-info-hash", v2_only, "--to", f"file:{reg}")
    assert [r.get("info_hash") for r in cli.records() if r["type"] == "torrent"] == [v1]

    for args, message in [
        ([], "give --info-hash, --v2-info-hash or both"),
        (["--v2-info-hash", "ab" * 20], "--v2-info-hash: expected 64 hexadecimal characters"),
        (["--info-hash", v1, "--v2-info-hash", v1 + "00" * 12], "--v2-info-hash starts with --info-hash"),
    ]:
        out = run_privtrak(privtrak_bin, "registry", "put-torrent", *args, "--to", f"file:{reg}", check=False)
        text = (out.stdout + out.stderr).decode(errors="replace")
        assert out.returncode != 0 and message in text, (args, text)
