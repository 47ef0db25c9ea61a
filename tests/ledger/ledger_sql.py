"""Helpers for the ledger's SQL tests: `migrate()`, a Python copy of the
Swift ledger's migration runner (schemas/ledger/CONTRACT.md, step 1), and `Batch`, which builds the
arguments of privtrak.apply_deltas."""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "schemas" / "ledger" / "migrations"
PORT = int(os.environ.get("PRIVTRAK_LEDGER_PG_PORT", "19532"))
ADVISORY_LOCK = 7368826
TOPIC = "privtrak.deltas"

_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")


class MigrationError(Exception):
    pass


def migration_files(directory: Path = MIGRATIONS) -> list[tuple[int, str, Path]]:
    out = []
    for p in sorted(directory.iterdir()):
        m = _FILE.match(p.name)
        if m:
            out.append((int(m.group(1)), m.group(2), p))
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version in {directory}")
    return out


def migrate(conninfo: str, directory: Path = MIGRATIONS) -> list[int]:
    """The contract's runner: returns the versions it applied."""
    applied_now = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS privtrak")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS privtrak.schema_migrations("
                " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            recorded = {
                v: (n, c)
                for v, n, c in conn.execute(
                    "SELECT version, name, checksum FROM privtrak.schema_migrations"
                )
            }
            for version, name, path in migration_files(directory):
                data = path.read_bytes()
                checksum = hashlib.sha256(data).hexdigest()
                if version in recorded:
                    if recorded[version][1] != checksum:
                        raise MigrationError(
                            f"{path.name}: checksum {checksum} differs from the applied "
                            f"one {recorded[version][1]}; refusing to start"
                        )
                    continue
                with conn.transaction():
                    conn.execute(data.decode("utf-8"))
                    conn.execute(
                        "INSERT INTO privtrak.schema_migrations(version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (version, name, checksum),
                    )
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK,))
    return applied_now


# --- batches ------------------------------------------------------------------

NOW_MS = int(time.time() * 1000)


def uid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def ih(n: int) -> bytes:
    return n.to_bytes(20, "big")


@dataclass
class Batch:
    """Arguments of one apply_deltas call. `add` appends one delta at the
    next offset of its partition (unless `offset` is given)."""

    topic: str = TOPIC
    next_offsets: dict[int, int] = field(default_factory=dict)
    d: list[dict] = field(default_factory=list)
    r: list[dict] = field(default_factory=list)

    def add(self, *, user=1, torrent=1, up=0, down=0, event=0, at_ms=None, seeding=False,
            interval=0, reset=False, instance=1, seq, partition=0, offset=None,
            client_ip=b"", peer_id=b"", uf=-1, df=-1, same_record=False):
        if offset is None:
            nxt = self.next_offsets.get(partition, 0)
            offset = nxt - 1 if same_record else nxt
        self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), offset + 1)
        self.d.append(dict(
            partition=partition, offset=offset, user_id=uid(user) if isinstance(user, int) else user,
            info_hash=ih(torrent) if isinstance(torrent, int) else torrent,
            uploaded=up, downloaded=down, event=event,
            reported_at_ms=NOW_MS if at_ms is None else at_ms, seeding=seeding,
            interval_s=interval, reset=reset, instance=instance, sequence=seq,
            client_ip=client_ip, peer_id=peer_id, upload_factor=uf, download_factor=df))
        return self

    def reject(self, *, partition=0, offset=None, key=b"k", value=b"v", reason="bad"):
        if offset is None:
            offset = self.next_offsets.get(partition, 0)
        self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), offset + 1)
        self.r.append(dict(partition=partition, offset=offset, key=key, value=value, reason=reason))
        return self

    def args(self):
        parts = sorted(self.next_offsets)
        col = lambda k: [x[k] for x in self.d]  # noqa: E731
        rcol = lambda k: [x[k] for x in self.r]  # noqa: E731
        return (
            self.topic, parts, [self.next_offsets[p] for p in parts],
            col("partition"), col("offset"), col("user_id"), col("info_hash"),
            col("uploaded"), col("downloaded"), col("event"), col("reported_at_ms"),
            col("seeding"), col("interval_s"), col("reset"), col("instance"), col("sequence"),
            col("client_ip"), col("peer_id"), col("upload_factor"), col("download_factor"),
            rcol("partition"), rcol("offset"), rcol("key"), rcol("value"), rcol("reason"),
        )


APPLY_SQL = (
    "SELECT applied, duplicates, skipped FROM privtrak.apply_deltas("
    "%s::text, %s::int[], %s::bigint[], %s::int[], %s::bigint[], %s::bytea[], %s::bytea[],"
    " %s::bigint[], %s::bigint[], %s::smallint[], %s::bigint[], %s::boolean[], %s::bigint[],"
    " %s::boolean[], %s::bigint[], %s::bigint[], %s::bytea[], %s::bytea[], %s::int[], %s::int[],"
    " %s::int[], %s::bigint[], %s::bytea[], %s::bytea[], %s::text[])"
)


def apply(conn, batch: Batch) -> tuple[int, int, int]:
    row = conn.execute(APPLY_SQL, batch.args()).fetchone()
    return tuple(row)


def one(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()
