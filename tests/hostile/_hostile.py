"""Helpers of the hostile suite: a real `hubtransfer` process, and what its answer must be."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY = "hostile_tiny_fv"
# A real `hubtransfer` process, with the tiny test backbone registered under TINY.
RUNNER = (
    "import sys, hubtransfer\n"
    "from hubtransfer.testing import tiny_spec\n"
    "hubtransfer.register_backbone(tiny_spec(sys.argv[1], name=sys.argv[2]), replace=True)\n"
    "from hubtransfer._cli import main\n"
    "sys.exit(main(sys.argv[3:]))\n"
)
FAST = {"epochs": 8, "learning_rate": 0.3, "batch_size": 8, "verbose": 0}


@dataclass(frozen=True)
class Finished:
    """A finished child process."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(
    tiny_models: dict[str, Path],
    arguments: Sequence[str],
    *,
    timeout: float = 240,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    wrap: Sequence[str] = (),
) -> Finished:
    """Runs ``hubtransfer ARGUMENTS`` in a real process; fails the test if it outlives ``timeout``.

    ``wrap`` is a command line the process runs under (``unshare``...): its
    last element receives the Python command as ``"$@"``.
    """
    command = [sys.executable, "-c", RUNNER, str(tiny_models["fv"]), TINY, *arguments]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    try:
        done = subprocess.run(
            [*wrap, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"`hubtransfer {' '.join(arguments)}` still ran after {timeout} s: {error}")
    return Finished(done.returncode, done.stdout, done.stderr)


def assert_one_error_line(finished: Finished, *fragments: str) -> str:
    """Exit 1, no traceback, and the last stderr line naming every fragment; returns it."""
    assert finished.code == 1, (finished.code, finished.err[-3000:])
    assert "Traceback" not in finished.err, finished.err[-3000:]
    line = finished.error_lines[-1]
    assert line.startswith("hubtransfer "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (to prove nothing changed)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@contextlib.contextmanager
def paused_at(
    step: str, script: str, *arguments: str, signal_file: Path, timeout: float = 240
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs a Python ``script`` in a real process until the library reaches ``step``.

    The process is stopped there by the library's testing seam
    (``HUBTRANSFER_PAUSE_AT``, see ``hubtransfer._seams``) and is killed with
    SIGKILL when the block ends.
    """
    environment = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "HUBTRANSFER_PAUSE_AT": step,
        "HUBTRANSFER_PAUSE_SIGNAL": str(signal_file),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *arguments],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not signal_file.exists():
            if process.poll() is not None:
                pytest.fail(f"the process ended ({process.returncode}) before {step}")
            if time.monotonic() > deadline:
                pytest.fail(f"the process did not reach {step} in {timeout} s")
            time.sleep(0.05)
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
