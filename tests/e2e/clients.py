"""Real BitTorrent clients driven by the e2e tests: libtorrent (python3-libtorrent,
Debian's /usr/bin/python3 only) and transmission-cli (a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Tuple

try:
    import libtorrent as lt
except ImportError as exc:  # pragma: no cover - reported by conftest
    lt = None
    LT_IMPORT_ERROR: Optional[BaseException] = exc
else:
    LT_IMPORT_ERROR = None

# libtorrent peer_info.source bits: peers from the tracker, and from anywhere
# else (DHT, PEX, LSD), which must never appear on a private torrent.
SOURCE_TRACKER = int(lt.peer_info.tracker) if lt else 0x1
NON_TRACKER_SOURCES = int(lt.peer_info.dht | lt.peer_info.pex | lt.peer_info.lsd) if lt else 0x2 | 0x4 | 0x8

from support.common import stop_process_group, tail


# --------------------------------------------------------------------------
# torrents
# --------------------------------------------------------------------------


def make_private_torrent(payload: Path, announce_url: str, out: Path, piece_size: int = 16 * 1024) -> bytes:
    """Create a v1-only PRIVATE torrent for the single file `payload` with one
    tracker, write it to `out`, and return its 20-byte v1 info-hash.

    v1-only: libtorrent 2.0 creates hybrid v1+v2 torrents by default, which
    would announce a second (truncated SHA-256) info-hash; transmission 3.00
    knows only v1, and so does a v1 tracker.
    The private flag (BEP 27) turns DHT, PEX and LSD off for this torrent in
    every compliant client, so peers can only be found through the tracker.
    """
    v1, _ = make_torrent(payload, announce_url, out, "v1", piece_size)
    return v1


# The torrent kinds libtorrent 2 makes: v1-only, hybrid (its default: v1 and
# v2 hashes, announced once with each) and v2-only (BEP 52).
TORRENT_KINDS = ("v1", "hybrid", "v2")


def make_torrent(payload: Path, announce_url: str, out: Path, kind: str,
                 piece_size: int = 16 * 1024) -> Tuple[Optional[bytes], Optional[bytes]]:
    """Create a PRIVATE torrent of `kind` (see TORRENT_KINDS) for the single
    file `payload` with one tracker, write it to `out`, and return its v1
    info hash (20 bytes) and v2 info hash (32 bytes), None where it has none."""
    flags = {"v1": lt.create_torrent.v1_only, "hybrid": 0, "v2": lt.create_torrent.v2_only}[kind]
    fs = lt.file_storage()
    lt.add_files(fs, str(payload))
    ct = lt.create_torrent(fs, piece_size, flags=flags)
    ct.set_priv(True)
    ct.add_tracker(announce_url, 0)
    ct.set_creator("privtrak-e2e")
    lt.set_piece_hashes(ct, str(payload.parent))
    out.write_bytes(lt.bencode(ct.generate()))
    ti = lt.torrent_info(str(out))
    assert ti.priv(), "torrent is not private"
    hashes = ti.info_hashes()
    v1 = bytes.fromhex(str(hashes.v1)) if hashes.has_v1() else None
    v2 = bytes.fromhex(str(hashes.v2)) if hashes.has_v2() else None
    assert (v1 is not None, v2 is not None) == {"v1": (True, False), "hybrid": (True, True),
                                                "v2": (False, True)}[kind], (kind, v1, v2)
    return v1, v2


# --------------------------------------------------------------------------
# libtorrent
# --------------------------------------------------------------------------

def _lt_settings(name: str, port: int) -> dict:
    return {
        "listen_interfaces": f"127.0.0.1:{port}",
        "outgoing_interfaces": "",
        # peers may come from the tracker only
        "enable_dht": False,
        # libtorrent refuses loopback trackers whose path is not /announce
        # (SSRF mitigation); passkey paths are /<passkey>/announce.
        "ssrf_mitigation": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # everything is on 127.0.0.1: several peers share one IP
        "allow_multiple_connections_per_ip": True,
        # uTP over loopback works but TCP is simpler to reason about
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        # fast reactions on a quiet loopback
        "tracker_completion_timeout": 10,
        "tracker_receive_timeout": 5,
        "stop_tracker_timeout": 1,
        "peer_connect_timeout": 3,
        "min_reconnect_time": 1,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "auto_manage_startup": 1,
        "user_agent": f"privtrak-e2e-{name}/libtorrent-{lt.__version__}",
        "alert_mask": lt.alert_category.error
        | lt.alert_category.tracker
        | lt.alert_category.status
        | lt.alert_category.peer
        | lt.alert_category.connect
        # E2E_DEBUG=1: log every peer-protocol message too (shown on failure)
        | (lt.alert_category.peer_log if os.environ.get("E2E_DEBUG") else 0),
    }


class LtPeer:
    """One libtorrent session with one torrent, listening on 127.0.0.1:port."""

    def __init__(self, name: str, port: int):
        self.name = name
        self.port = port
        self.session = lt.session(_lt_settings(name, port))
        self.handle = None
        self.log: List[str] = []
        self.sources_seen = 0
        self.tracker_replies = 0
        self.tracker_errors: List[str] = []

    def add_torrent(self, torrent: Path, save_path: Path):
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(str(torrent))
        atp.save_path = str(save_path)
        self.handle = self.session.add_torrent(atp)
        return self.handle

    def pump(self) -> None:
        """Drain alerts into self.log and track tracker replies and peer sources."""
        for a in self.session.pop_alerts():
            line = f"{time.monotonic():.3f} {type(a).__name__}: {a.message()}"
            self.log.append(line)
            if isinstance(a, lt.tracker_reply_alert):
                self.tracker_replies += 1
            elif isinstance(a, (lt.tracker_error_alert,)):
                self.tracker_errors.append(a.message())
        if self.handle is not None and self.handle.is_valid():
            for p in self.handle.get_peer_info():
                self.sources_seen |= int(p.source)

    def status(self):
        return self.handle.status()

    def is_seeding(self) -> bool:
        st = self.status()
        return bool(st.is_seeding)

    def reannounce(self) -> None:
        self.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)

    def describe(self) -> str:
        out = [f"--- libtorrent peer {self.name} (127.0.0.1:{self.port})"]
        try:
            self.pump()
            if self.handle is not None:
                st = self.status()
                out.append(
                    f"state={st.state} progress={st.progress:.3f} peers={st.num_peers} seeds={st.num_seeds} "
                    f"seeding={st.is_seeding} tracker_replies={self.tracker_replies} errors={st.errc.message()}"
                )
                for t in self.handle.trackers():
                    out.append(f"tracker {t.get('url')}")
                for p in self.handle.get_peer_info():
                    out.append(f"peer {p.ip} source={p.source} progress={p.progress:.2f} client={p.client!r}")
        except Exception as exc:  # noqa: BLE001
            out.append(f"(status unavailable: {exc!r})")
        out.extend(self.log[-(400 if os.environ.get("E2E_DEBUG") else 40):])
        return "\n".join(out)

    def close(self) -> None:
        try:
            if self.handle is not None and self.handle.is_valid():
                self.session.remove_torrent(self.handle)
            self.session.pause()
        finally:
            self.handle = None
            self.session = None


# --------------------------------------------------------------------------
# transmission-cli
# --------------------------------------------------------------------------


class TransmissionCli:
    """transmission-cli 3.00 as a one-shot client: downloads (or seeds, if the data
    is already in download_dir) until it is stopped."""

    def __init__(self, torrent: Path, workdir: Path, port: int):
        self.torrent = torrent
        self.workdir = workdir
        self.port = port
        self.config_dir = workdir / "config"
        self.download_dir = workdir / "download"
        self.home = workdir / "home"
        self.log_path = workdir / "transmission-cli.log"
        for d in (self.config_dir, self.download_dir, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.proc: Optional[subprocess.Popen] = None

    def write_settings(self) -> None:
        # transmission-cli reads <config-dir>/settings.json at start.
        settings = {
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "peer-port": self.port,
            "peer-port-random-on-start": False,
            "port-forwarding-enabled": False,
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "blocklist-enabled": False,
            "encryption": 0,  # tolerated: plaintext preferred, both accepted
            "rename-partial-files": True,
            "incomplete-dir-enabled": False,
            "download-dir": str(self.download_dir),
            "speed-limit-up-enabled": False,
            "speed-limit-down-enabled": False,
            "message-level": 3,
        }
        (self.config_dir / "settings.json").write_text(json.dumps(settings, indent=1))

    def start(self) -> None:
        exe = shutil.which("transmission-cli")
        assert exe, "transmission-cli not installed (apt-get install transmission-cli)"
        self.write_settings()
        env = dict(os.environ, HOME=str(self.home), TR_CURL_VERBOSE="0")
        cmd = [
            exe,
            "-g", str(self.config_dir),
            "-w", str(self.download_dir),
            "-p", str(self.port),
            "-M",   # no port mapping
            "-B",   # no blocklist
            "-et",  # encryption tolerated
            str(self.torrent),
        ]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=env, cwd=str(self.workdir), start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        files = sorted(p.name + f" ({p.stat().st_size} B)" for p in self.download_dir.iterdir()) if self.download_dir.exists() else []
        return f"--- transmission-cli :{self.port} rc={rc} files={files}\n{tail(self.log_path, 30)}"

    def stop(self) -> None:
        stop_process_group(self.proc, grace=5.0)
        if getattr(self, "_log", None):
            self._log.close()
