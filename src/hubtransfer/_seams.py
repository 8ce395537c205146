"""A documented testing seam: stop the process at a named step, so a test can kill it there.

Crash-safety tests need a real process killed with ``SIGKILL`` at an exact
moment (right after a model folder is renamed into place, half-way through a
feature shard). Timing a kill from outside cannot hit a window of
microseconds, so the library marks its commit points with :func:`pause_point`.
It does nothing unless the environment says so::

    HUBTRANSFER_PAUSE_AT=save:replaced          # the step to stop at
    HUBTRANSFER_PAUSE_SIGNAL=/tmp/reached       # a file created when it is reached

The process then creates the signal file and sleeps until it is killed. The
steps are listed in :data:`PAUSE_POINTS`. Nothing is mocked: the process is
the real library doing its real writes, stopped between two of them.
"""

from __future__ import annotations

import os
import time
from typing import Final

__all__ = ["PAUSE_POINTS", "pause_point"]

PAUSE_AT_ENV: Final = "HUBTRANSFER_PAUSE_AT"
PAUSE_SIGNAL_ENV: Final = "HUBTRANSFER_PAUSE_SIGNAL"

PAUSE_POINTS: Final = (
    "folder:written",  # a folder's contents are complete in the temporary folder
    "folder:replaced",  # the new folder is in place; the old one is not yet removed
    "shard:written",  # a feature shard's files are written, not yet renamed into place
    "download:started",  # the first bytes of a download are on disk
)


def pause_point(step: str) -> None:
    """Stops here, until killed, when ``$HUBTRANSFER_PAUSE_AT`` names ``step``."""
    if os.environ.get(PAUSE_AT_ENV) != step:
        return
    signal = os.environ.get(PAUSE_SIGNAL_ENV)
    if signal:
        with open(signal, "w", encoding="utf8") as handle:
            handle.write(f"{os.getpid()} {step}\n")
    while True:  # pragma: no cover - ended by the test's SIGKILL
        time.sleep(3600)
