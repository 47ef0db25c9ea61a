"""Fixtures of the fault suite: the privtrak binary under test, and a
registry that stops every process a test started (brokers, S3, trackers),
whatever the outcome.

Required environment (the suite FAILS without it, it never skips):
  PRIVTRAK_BIN=/path/to/privtrak     the binary under test
  . scripts/env.sh                   librdkafka >= 2.2 (the harness adds .runtime/lib anyway)
Python: the pyenv python3 with confluent_kafka, protobuf and moto (scripts/setup).
Broker ports: 19492..19499 (one per test; never 19092, which `make test` uses);
the ledger consumer-group scenario: broker 19691, PostgreSQL 19634.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared `support` package

import harness  # noqa: E402
from harness import Broker, S3Store, Tracker  # noqa: E402


@pytest.fixture(autouse=True)
def broker_quirks():
    """The BROKER-QUIRK recoveries of one test (listed in its FAULT-FIGURES)."""
    harness.QUIRKS.clear()
    yield harness.QUIRKS


@pytest.fixture(scope="session")
def privtrak_bin() -> str:
    binary = os.environ.get("PRIVTRAK_BIN", "").strip()
    if not binary:
        pytest.fail("PRIVTRAK_BIN is required: swift build --product privtrak; "
                    "PRIVTRAK_BIN=$(swift build --show-bin-path)/privtrak", pytrace=False)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"PRIVTRAK_BIN={binary!r} is not an executable file", pytrace=False)
    try:
        import confluent_kafka  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"{exc}: run the fault suite with the python3 that scripts/setup provisions "
                    f"(this is {sys.executable})", pytrace=False)
    return binary


class Processes:
    """Everything a test started; stopped in reverse order at teardown."""

    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir = binary, workdir
        self.started = []

    def broker(self, port: int, **kwargs) -> Broker:
        b = Broker(port, self.workdir, **kwargs)
        self.started.append(b)
        return b.start()

    def s3(self, port: int) -> S3Store:
        s = S3Store(port, self.workdir)
        self.started.append(s)
        return s.start()

    def tracker(self, **kwargs) -> Tracker:
        t = Tracker(self.binary, self.workdir, **kwargs)
        self.started.append(t)
        return t

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.started if hasattr(p, "describe"))

    def stop_all(self) -> None:
        for p in reversed(self.started):
            try:
                p.stop()
            except Exception as exc:  # noqa: BLE001 - teardown goes on
                print(f"teardown: stopping {p!r} failed: {exc!r}")


@pytest.fixture
def procs(privtrak_bin: str, tmp_path: Path):
    p = Processes(privtrak_bin, tmp_path)
    try:
        yield p
    finally:
        p.stop_all()
