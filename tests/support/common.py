"""Deadlines, process groups, files and the runtime environment.

Nothing here sleeps to synchronise: every wait polls a real condition under
a deadline (`wait_until`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
RUNTIME_LIB = REPO / ".runtime" / "lib"


class DeadlineExceeded(AssertionError):
    pass


def wait_until(predicate: Callable[[], Optional[T]], timeout: float, what: str, interval: float = 0.05,
               on_timeout: Optional[Callable[[], str]] = None) -> T:
    """Polls `predicate` until it returns a truthy value (returned) or
    `timeout` passes; then raises DeadlineExceeded naming `what`, the last
    exception the predicate raised (if any) and `on_timeout()`."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.1f}s waiting for {what}"
            if last_exc is not None:
                msg += f"; last error: {last_exc!r}"
            if on_timeout is not None:
                msg += "\n" + on_timeout()
            raise DeadlineExceeded(msg)
        time.sleep(interval)


def stop_process_group(proc: Optional[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds, the process group of a
    process started with start_new_session=True (its leader's pid is the
    group id). A frozen (SIGSTOPped) group is continued first: it could not
    act on SIGTERM."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=grace)


def tail(path: os.PathLike, n: int = 40) -> str:
    """The last `n` lines of a log file, or "(no file)"."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except FileNotFoundError:
        return "(no file)"


def runtime_env() -> dict:
    """The environment of scripts/env.sh: librdkafka >= 2.2 first on the path."""
    env = dict(os.environ)
    parts = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    if str(RUNTIME_LIB) not in parts:
        parts.insert(0, str(RUNTIME_LIB))
    env["LD_LIBRARY_PATH"] = ":".join(parts)
    return env
