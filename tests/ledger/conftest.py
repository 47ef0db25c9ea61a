"""Fixtures for the ledger's SQL tests: a private PostgreSQL cluster
(scripts/postgres, port PRIVTRAK_LEDGER_PG_PORT, default 19532) for the
session, and a fresh database per test with the migrations applied the way
schemas/ledger/CONTRACT.md says (ledger_sql.migrate)."""

import itertools
import os
import subprocess

import psycopg
import pytest

from ledger_sql import PORT, ROOT, migrate

@pytest.fixture(scope="session")
def pg_server():
    script = ROOT / "scripts" / "postgres"
    subprocess.run([str(script), "start", str(PORT)], check=True)
    url = subprocess.run(
        [str(script), "url", str(PORT)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run([str(script), "stop", str(PORT)], check=False)


_db_counter = itertools.count()


@pytest.fixture
def empty_db(pg_server):
    """conninfo of a fresh, empty database (dropped afterwards)."""
    name = f"ledger_test_{os.getpid()}_{next(_db_counter)}"
    admin = pg_server.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(empty_db):
    migrate(empty_db)
    return empty_db


@pytest.fixture
def db(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


