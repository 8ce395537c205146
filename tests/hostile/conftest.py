"""The hostile suite: real files, real processes, a real server, real file-system faults.

Each module attacks one class of failure the way a careless user, a damaged
disk or a hostile server would: folders of notes given as ``--out``, flipped
bytes in the feature cache, FIFOs named ``x.png``, archives that unpack to
gigabytes, servers that drip a byte at a time, read-only and full disks,
hand-edited model folders, and API calls at the edges. Nothing is mocked.
Anything that could hang runs in a child process or thread with a time-out,
so a regression fails the test instead of stopping the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _hostile import TINY

import hubtransfer
from hubtransfer.testing import make_colour_folder, tiny_spec


@pytest.fixture(scope="session")
def tiny_backbone(tiny_models: dict[str, Path]) -> Iterator[hubtransfer.BackboneSpec]:
    spec = tiny_spec(tiny_models["fv"], name=TINY)
    hubtransfer.register_backbone(spec, replace=True)
    yield spec
    hubtransfer.default_registry().unregister(TINY)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_colour_folder(tmp_path / "data", per_class=8)
