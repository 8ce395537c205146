"""A process killed mid-write leaves the old state or the new one, never a half state.

Each test starts a real child process that writes in a loop (a model save, a
backbone build), kills it with SIGKILL at several moments, and checks what a
reader then finds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer.testing import tiny_spec

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in {"red": (230, 20, 20), "blue": (20, 20, 230)}.items():
        (root / name).mkdir(parents=True)
        for index in range(6):
            noise = rng.integers(-20, 20, (32, 32, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def _start(script: str, *args: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )


def _wait_for_line(process: subprocess.Popen[str], expected: str, timeout: float = 180) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == expected:
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"the child exited with {process.returncode} before {expected!r}")
    raise AssertionError(f"the child did not print {expected!r} in {timeout} s")


SAVE_LOOP = """
    import sys
    import hubtransfer
    from hubtransfer.testing import tiny_spec

    model_path, data, target = sys.argv[1:]
    spec = tiny_spec(model_path, name="crash_tiny_fv")
    models = [
        hubtransfer.TransferClassifier(spec, epochs=1 + i, verbose=0, seed=i).fit(data)
        for i in range(2)
    ]
    models[0].save(target)
    print("saved", flush=True)
    i = 0
    while True:
        models[i % 2].save(target)
        i += 1
"""


def test_killed_save_leaves_the_old_model_or_the_new(
    tiny_models: dict[str, Path], tmp_path: Path, isolated_cache: Path
) -> None:
    data = _folder(tmp_path / "data")
    target = tmp_path / "model"
    process = _start(SAVE_LOOP, str(tiny_models["fv"]), str(data), str(target))
    try:
        _wait_for_line(process, "saved")
        for delay in (0.05, 0.13, 0.29, 0.41, 0.07, 0.19, 0.02, 0.33):
            time.sleep(delay)
            process.send_signal(signal.SIGSTOP)
            # Frozen mid-loop: whatever is at the target now must load and predict.
            model = hubtransfer.TransferClassifier.load(target)
            assert model.predict(str(data)).shape == (12,)
            process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
    model = hubtransfer.TransferClassifier.load(target)
    assert sorted(model.classes_) == ["blue", "red"]
    # Leftovers of the killed writer are hidden temporary folders, never the target.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.")]
    assert all(name.endswith((".tmp", ".old")) for name in leftovers)


BUILD_LOOP = """
    import shutil, sys
    from hubtransfer._cache import build_atomically
    from hubtransfer.testing import make_tiny_savedmodel

    target = __import__("pathlib").Path(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        shutil.rmtree(target, ignore_errors=True)
        build_atomically(target, lambda folder: make_tiny_savedmodel(folder, seed=i))
        i += 1
"""


def test_killed_cache_build_never_leaves_a_partial_entry(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "entry"
    for delay in (0.5, 1.5, 3.0):
        process = _start(BUILD_LOOP, str(target))
        try:
            _wait_for_line(process, "ready")
            time.sleep(delay)
            process.kill()
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        if target.exists():
            assert (target / "saved_model.pb").is_file()
            assert (target / "variables").is_dir()
            backbone = hubtransfer.load_backbone(tiny_spec(target, name="crash_entry_fv"))
            assert backbone.predict(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 8)
