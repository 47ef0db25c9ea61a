"""`privtrak ledger` and its PostgreSQL for the e2e tests.

A private PostgreSQL cluster (scripts/postgres, port PG_PORT) is started once
per pytest session by the `pg_cluster` fixture and stopped at its end; each
test gets its own fresh database from `ledger_db`. Debian's /usr/bin/python3
(which runs tests/e2e) has no psycopg, so every statement goes through the
`psql` CLI (`-At -F,`: unaligned rows, comma-separated fields).

Import both fixtures into a test module to use them:

    from ledger_support import ledger_db, pg_cluster  # noqa: F401

`LedgerProcess` runs `privtrak ledger --admin off` as a subprocess (env from
support.common.runtime_env()), its stdout and stderr in files whose tails
`describe()` gives for failure messages. `committed_ends()` reads a topic's
committed records with kcat (Debian's python has no confluent_kafka) and
returns, per partition, the offset after its last record: what the ledger
stores in privtrak.partition_offsets once it has applied everything.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from support.common import REPO, runtime_env, tail

PG_PORT = 19535
PG_HOST = "127.0.0.1"
PG_SCRIPT = REPO / "scripts" / "postgres"
PSQL = os.environ.get("PRIVTRAK_PSQL", "psql")
KCAT = os.environ.get("PRIVTRAK_KCAT", "kcat")


def _pg(cmd: str) -> None:
    out = subprocess.run([str(PG_SCRIPT), cmd, str(PG_PORT)], capture_output=True, timeout=90)
    assert out.returncode == 0, f"scripts/postgres {cmd} {PG_PORT}: {out.stderr.decode(errors='replace')}"


def db_url(db: str) -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{db}"


def psql(db: str, sql: str, timeout: float = 20.0) -> List[List[str]]:
    """Runs `sql` in database `db`; its rows, each a list of text fields
    (NULL as the empty string). Raises on any error."""
    out = subprocess.run([PSQL, "-X", "-q", "-At", "-F,", "-v", "ON_ERROR_STOP=1",
                          "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-d", db, "-c", sql],
                         capture_output=True, timeout=timeout,
                         env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    if out.returncode != 0:
        raise AssertionError(f"psql -d {db} -c {sql!r} exited {out.returncode}: "
                             f"{out.stderr.decode(errors='replace').strip()}")
    return [line.split(",") for line in out.stdout.decode().splitlines() if line]


class LedgerDb:
    """Read-only queries on one ledger database (empty answers until the
    ledger's migrations made the tables)."""

    def __init__(self, name: str):
        self.name = name
        self.url = db_url(name)

    def has(self, table: str) -> bool:
        return psql(self.name, f"SELECT to_regclass('privtrak.{table}') IS NOT NULL")[0][0] == "t"

    def user_totals(self) -> Dict[bytes, Tuple[int, int]]:
        """user_id -> (uploaded, downloaded)."""
        if not self.has("user_totals"):
            return {}
        return {bytes.fromhex(u): (int(up), int(down)) for u, up, down in
                psql(self.name, "SELECT encode(user_id, 'hex'), uploaded, downloaded FROM privtrak.user_totals")}

    def offsets(self, topic: str) -> Dict[int, int]:
        """partition -> stored next_offset of `topic`."""
        if not self.has("partition_offsets"):
            return {}
        return {int(p): int(n) for p, n in psql(
            self.name, f"SELECT partition, next_offset FROM privtrak.partition_offsets WHERE topic = '{topic}'")}

    def completed_at(self, user_id: bytes, info_hash: bytes) -> Optional[str]:
        """user_torrents.completed_at of (user, torrent): None without a row,
        "" when the row has none."""
        rows = psql(self.name, "SELECT coalesce(completed_at::text, '') FROM privtrak.user_torrents "
                               f"WHERE user_id = '\\x{user_id.hex()}' AND info_hash = '\\x{info_hash.hex()}'")
        return rows[0][0] if rows else None

    def snatches(self, info_hash: bytes) -> Optional[int]:
        rows = psql(self.name, f"SELECT snatches FROM privtrak.torrent_totals WHERE info_hash = '\\x{info_hash.hex()}'")
        return int(rows[0][0]) if rows else None

    def describe(self) -> str:
        try:
            totals = {u.hex(): v for u, v in self.user_totals().items()}
            rows = psql(self.name, "SELECT encode(user_id, 'hex'), encode(info_hash, 'hex'), uploaded, downloaded, "
                                   "announces, completed_at FROM privtrak.user_torrents") \
                if self.has("user_torrents") else []
            offsets = psql(self.name, "SELECT topic, partition, next_offset FROM privtrak.partition_offsets") \
                if self.has("partition_offsets") else []
            return f"--- database {self.name}: user_totals {totals}\nuser_torrents {rows}\noffsets {offsets}"
        except Exception as exc:  # noqa: BLE001 - a description must not raise
            return f"--- database {self.name}: unreadable: {exc!r}"


@pytest.fixture(scope="session")
def pg_cluster():
    """The private PostgreSQL cluster on PG_PORT, started once per session
    (idempotent) and stopped at its end."""
    _pg("start")
    try:
        yield PG_PORT
    finally:
        _pg("stop")


@pytest.fixture
def ledger_db(pg_cluster, request) -> LedgerDb:
    """A fresh, empty database for this test (dropped first if a previous
    run left it); the ledger creates its tables there."""
    # PostgreSQL names have at most 63 bytes: keep the end (the parameters).
    name = "e2e_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[-59:].lstrip("_")
    psql("privtrak", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql("privtrak", f"CREATE DATABASE {name}")
    return LedgerDb(name)


class LedgerProcess:
    """`privtrak ledger --from kafka://BOOTSTRAP/TOPIC --to URL --admin off`."""

    def __init__(self, binary: str, workdir: Path, bootstrap: str, topic: str, db: LedgerDb):
        self.argv = [binary, "ledger", "--from", f"kafka://{bootstrap}/{topic}", "--to", db.url,
                     "--admin", "off"]
        self.workdir = workdir
        self.stdout_path = workdir / "ledger.stdout"
        self.stderr_path = workdir / "ledger.stderr"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "LedgerProcess":
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=runtime_env(), cwd=str(self.workdir), start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float) -> Optional[int]:
        """SIGTERM; its exit code, or None if it still runs after `timeout` s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Ends it whatever its state (cleanup): SIGKILL if SIGTERM is not enough."""
        if not self.alive():
            return
        if self.terminate(10) is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def describe(self) -> str:
        rc = None if self.proc is None else self.proc.poll()
        return (f"--- privtrak ledger rc={rc}: {' '.join(self.argv)}\n"
                f"--- stderr (tail)\n{tail(self.stderr_path, 30)}\n--- stdout (tail)\n{tail(self.stdout_path, 30)}")


def committed_ends(bootstrap: str, topic: str, timeout: float = 60.0) -> Dict[int, int]:
    """Per partition holding committed records: the offset after its last
    one (read_committed, from the beginning, to the end), read with kcat."""
    out = subprocess.run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                          "-X", "isolation.level=read_committed", "-f", "%p %o\\n"],
                         capture_output=True, env=runtime_env(), timeout=timeout)
    assert out.returncode == 0, f"kcat exited {out.returncode}: {out.stderr.decode(errors='replace')}"
    ends: Dict[int, int] = {}
    for line in out.stdout.decode().splitlines():
        if line.strip():
            p, o = (int(x) for x in line.split())
            ends[p] = max(ends.get(p, 0), o + 1)
    return ends
