"""The committed Fashion-MNIST sample: its layout, and that its script remakes it exactly."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from hubtransfer._data import SkippedFile, scan_image_folder

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "make_fashion_mnist_sample.py"
SAMPLES = {
    "train": (REPO / "examples" / "data" / "fashion-mnist-sample", 40),
    "test": (REPO / "examples" / "data" / "fashion-mnist-sample-test", 10),
}
CLASSES = (
    "ankle_boot",
    "bag",
    "coat",
    "dress",
    "pullover",
    "sandal",
    "shirt",
    "sneaker",
    "t-shirt_top",
    "trouser",
)


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fashion_mnist_sample", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("split", SAMPLES)
def test_committed_sample_layout(split: str) -> None:
    folder, per_class = SAMPLES[split]
    data = scan_image_folder(folder)
    assert data.classes == CLASSES
    assert data.class_counts() == dict.fromkeys(CLASSES, per_class)
    # The data README is the only thing beside the class folders.
    assert data.skipped == (SkippedFile(path=folder / "README.md", reason="outside class folders"),)
    for path in data.paths:
        assert re.fullmatch(r"\d{5}\.png", path.name)
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "MIT" in readme
    assert f"--split {split} --per-class {per_class} --seed 0" in readme


def test_committed_samples_stay_small() -> None:
    total = sum(p.stat().st_size for folder, _ in SAMPLES.values() for p in folder.rglob("*"))
    assert total < 400 * 1024


def test_script_class_names_match(script: ModuleType) -> None:
    assert tuple(sorted(script.CLASS_NAMES)) == CLASSES


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("split", SAMPLES)
def test_script_remakes_the_committed_sample(
    split: str, script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (script.DEFAULT_SOURCE / script.SOURCE_FILES[split][0]).is_file():
        pytest.skip("needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
    folder, per_class = SAMPLES[split]
    args = ["--split", split, "--per-class", str(per_class), "--seed", "0"]
    # Run from an empty folder with the default --out, so the README's command line is the same.
    monkeypatch.chdir(tmp_path)
    assert script.main(args) == 0
    remade = tmp_path / script.DEFAULT_OUT[split]
    first = _tree(remade)
    assert script.main([*args, "--overwrite"]) == 0
    assert _tree(remade) == first, "two runs of the script wrote different bytes"
    committed = _tree(folder)
    assert sorted(first) == sorted(committed)
    for name in first:
        if name.endswith(".png"):
            assert np.array_equal(
                np.asarray(Image.open(remade / name)), np.asarray(Image.open(folder / name))
            ), name
    # PNG bytes depend on the zlib build; what must match is the pixels and the README.
    for name in first:
        if not name.endswith(".png"):
            assert first[name] == committed[name], name
