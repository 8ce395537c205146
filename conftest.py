"""Session-wide test environment, shared by tests/ and the doctests in src/.

Set before anything imports hubtransfer, so every cache lookup in a test
session lands in one fresh folder (or in ``$HUBTRANSFER_TEST_CACHE``, to reuse
the converted embedded backbone across local runs). TF-Hub's own cache
variable is cleared so that a developer's real cache is never touched.
"""

from __future__ import annotations

import os
import tempfile

os.environ["HUBTRANSFER_CACHE_DIR"] = os.environ.get(
    "HUBTRANSFER_TEST_CACHE"
) or tempfile.mkdtemp(prefix="hubtransfer-test-cache-")
os.environ.pop("TFHUB_CACHE_DIR", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
