"""The migration runner of CONTRACT.md (conftest.migrate) against the real files."""

import hashlib
import shutil

import psycopg
import pytest

from ledger_sql import MIGRATIONS, MigrationError, migrate, migration_files


def test_migrations_apply_on_empty_db_and_rerun_is_a_noop(empty_db):
    files = migration_files()
    assert files and files[0][0] == 1
    assert migrate(empty_db) == [v for v, _, _ in files]
    with psycopg.connect(empty_db) as c:
        rows = c.execute(
            "SELECT version, name, checksum FROM privtrak.schema_migrations ORDER BY version"
        ).fetchall()
        assert rows == [(v, n, hashlib.sha256(p.read_bytes()).hexdigest()) for v, n, p in files]
        tables = {r[0] for r in c.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'privtrak'")}
        for t in ["user_totals", "user_torrents", "torrent_totals", "partition_offsets",
                  "origin_marks", "rejected_records", "settings", "peer_sessions", "cheat_flags",
                  "torrent_windows", "deltas", "user_ratios", "hit_and_run_candidates",
                  "suspicious_uploads", "schema_migrations"]:
            assert t in tables, t
        settings = dict(c.execute("SELECT name, value FROM privtrak.settings"))
        assert settings == {
            "peer_lifetime_s": 3600, "hnr_min_seed_s": 259200, "hnr_grace_s": 1209600,
            "suspicious_window_s": 3600, "max_upload_rate_bps": 104857600,
            "audit_enabled": 0, "audit_retention_days": 30,
        }
    # Rerun: nothing applied, nothing changed.
    assert migrate(empty_db) == []
    with psycopg.connect(empty_db) as c:
        assert c.execute("SELECT count(*) FROM privtrak.schema_migrations").fetchone()[0] == len(files)


def test_migration_files_have_no_transaction_control():
    for _, _, p in migration_files():
        text = p.read_text()
        # outside function bodies too: the runner owns BEGIN/COMMIT
        for line in text.splitlines():
            code = line.split("--", 1)[0].strip().upper()
            assert code not in ("BEGIN;", "COMMIT;", "ROLLBACK;", "START TRANSACTION;"), (p, line)


def test_changed_checksum_is_refused_naming_the_file(empty_db, tmp_path):
    for _, _, p in migration_files():
        shutil.copy(p, tmp_path / p.name)
    assert migrate(empty_db, tmp_path) == [v for v, _, _ in migration_files()]
    first = sorted(tmp_path.iterdir())[0]
    first.write_bytes(first.read_bytes() + b"\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match=first.name):
        migrate(empty_db, tmp_path)


def test_a_failing_migration_rolls_back_and_is_not_recorded(empty_db, tmp_path):
    for _, _, p in migration_files():
        shutil.copy(p, tmp_path / p.name)
    n = len(migration_files())
    bad = tmp_path / f"{n + 1:04d}_broken.sql"
    bad.write_text("CREATE TABLE privtrak.half_done(x int);\nSELECT 1/0;\n")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_db, tmp_path)
    with psycopg.connect(empty_db) as c:
        assert c.execute("SELECT max(version) FROM privtrak.schema_migrations").fetchone()[0] == n
        assert c.execute("SELECT to_regclass('privtrak.half_done')").fetchone()[0] is None
