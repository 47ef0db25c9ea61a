"""Fixtures of the shard tests (tests/shards): the privtrak binary under test
and Debian's haproxy. Run with Debian's interpreter (python3-libtorrent):

    PRIVTRAK_BIN=/path/to/privtrak /usr/bin/python3 -m pytest -q tests/shards

Without PRIVTRAK_BIN, haproxy or libtorrent the tests FAIL, never skip.
Ports: 19740-19789 only (shard_support.py lists them).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e"))   # clients.py, e2e_helpers.py, privtrak_cli.py
sys.path.insert(0, str(HERE.parent))           # the shared `support` package

from clients import LT_IMPORT_ERROR  # noqa: E402
from shard_support import haproxy_binary  # noqa: E402


@pytest.fixture(scope="session")
def privtrak_bin() -> str:
    binary = os.environ.get("PRIVTRAK_BIN", "").strip()
    if not binary:
        pytest.fail("PRIVTRAK_BIN is required: swift build --product privtrak; "
                    "PRIVTRAK_BIN=$(swift build --show-bin-path)/privtrak", pytrace=False)
    binary = os.path.abspath(binary)   # privtrak runs in the test's temp dirs
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"PRIVTRAK_BIN={binary!r} is not an executable file", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def haproxy() -> str:
    return haproxy_binary()


@pytest.fixture(scope="session")
def libtorrent_available() -> None:
    if LT_IMPORT_ERROR is not None:
        pytest.fail(f"cannot import libtorrent ({LT_IMPORT_ERROR}); run under Debian's /usr/bin/python3 "
                    f"with python3-libtorrent installed (this is {sys.executable})", pytrace=False)
