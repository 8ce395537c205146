"""Session-wide test environment, shared by tests/ and the doctests in src/.

Set before anything imports hubtransfer, so every cache lookup in a test
session lands in one fresh folder, shared by the workers of a ``pytest -n``
run (or in ``$HUBTRANSFER_TEST_CACHE``, to reuse the converted embedded
backbone across local runs). TF-Hub's own cache
variable is cleared so that a developer's real cache is never touched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _session_cache() -> str:
    explicit = os.environ.get("HUBTRANSFER_TEST_CACHE")
    if explicit:
        return explicit
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run:  # the workers of one pytest-xdist run share one folder (builds are atomic)
        folder = Path(tempfile.gettempdir()) / f"hubtransfer-test-cache-{run}"
        folder.mkdir(exist_ok=True)
        return str(folder)
    return tempfile.mkdtemp(prefix="hubtransfer-test-cache-")


os.environ["HUBTRANSFER_CACHE_DIR"] = _session_cache()
os.environ.pop("TFHUB_CACHE_DIR", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
