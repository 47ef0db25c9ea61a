"""The privtrak command line as the e2e tests drive it: `privtrak registry …`
(users and torrents into a registry file or the Kafka registry topics) and
`privtrak tail … --json --exit-at-end` (the deltas a tracker published).

privtrak-specific, unlike e2e_helpers.py (which only speaks the tracker
protocols). Every command runs with a bounded timeout and the runtime
environment of scripts/env.sh (librdkafka >= 2.2 for kafka:// URLs).
"""

from __future__ import annotations

import json
import subprocess
from typing import List, Optional, Union

from support.common import runtime_env

CLI_TIMEOUT = 60.0


def run_privtrak(binary: str, *args: str, timeout: float = CLI_TIMEOUT, check: bool = True,
                 cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """Runs `privtrak ARGS…`; with `check`, a non-zero exit fails the test
    with the command and its output."""
    cmd = [binary, *args]
    out = subprocess.run(cmd, capture_output=True, env=runtime_env(), timeout=timeout,
                         stdin=subprocess.DEVNULL, cwd=cwd)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {out.returncode}\n"
                             f"stdout: {out.stdout.decode(errors='replace')}\n"
                             f"stderr: {out.stderr.decode(errors='replace')}")
    return out


def _hex(value: Union[bytes, str]) -> str:
    return value.hex() if isinstance(value, bytes) else value


class RegistryCLI:
    """`privtrak registry … --to URL` for one registry (file:PATH or kafka://HOST:PORT)."""

    def __init__(self, binary: str, url: str):
        self.binary, self.url = binary, url

    def _write(self, *args: str) -> subprocess.CompletedProcess:
        return run_privtrak(self.binary, "registry", *args, "--to", self.url)

    def put_user(self, user_id: Union[bytes, str], passkey: str, *options: str) -> subprocess.CompletedProcess:
        return self._write("put-user", "--user-id", _hex(user_id), "--passkey", passkey, *options)

    def put_torrent(self, info_hash: Optional[Union[bytes, str]], *options: str,
                    v2_info_hash: Optional[Union[bytes, str]] = None) -> subprocess.CompletedProcess:
        """A v1 torrent, a hybrid (both hashes) or a v2-only torrent (info_hash None)."""
        hashes = ([] if info_hash is None else ["--info-hash", _hex(info_hash)]) + (
            [] if v2_info_hash is None else ["--v2-info-hash", _hex(v2_info_hash)])
        return self._write("put-torrent", *hashes, *options)

    def delete_user(self, user_id: Union[bytes, str]) -> subprocess.CompletedProcess:
        return self._write("delete-user", "--user-id", _hex(user_id))

    def delete_torrent(self, info_hash: Union[bytes, str]) -> subprocess.CompletedProcess:
        return self._write("delete-torrent", "--info-hash", _hex(info_hash))

    def records(self) -> List[dict]:
        """`privtrak registry list --from URL --json`: every record, as in a registry file."""
        out = run_privtrak(self.binary, "registry", "list", "--from", self.url, "--json")
        return [json.loads(line) for line in out.stdout.decode().splitlines()
                if line.strip() and not line.startswith("#")]


def tail_deltas(binary: str, source: str, timeout: float = CLI_TIMEOUT) -> List[dict]:
    """Every delta at `source` (file:PATH or kafka://HOST:PORT/TOPIC) so far,
    decoded by `privtrak tail --json --exit-at-end`. A delta log file the
    tracker has not created yet holds no deltas; a batch still being
    written at the end of the file is left for the next call."""
    out = run_privtrak(binary, "tail", "--from", source, "--json", "--exit-at-end", timeout=timeout,
                       check=False)
    if out.returncode != 0:
        err = out.stderr.decode(errors="replace")
        if source.startswith("file:") and ("No such file" in err or "ENOENT" in err or "not found" in err):
            return []
        raise AssertionError(f"privtrak tail --from {source} exited {out.returncode}: {err}")
    return [json.loads(line) for line in out.stdout.decode().splitlines() if line.strip()]


def failure_reason(response: dict) -> Optional[str]:
    """The bencoded `failure reason` of a decoded announce/scrape response, or None."""
    reason = response.get(b"failure reason")
    return None if reason is None else reason.decode(errors="replace")
