"""The examples run, offline, and print what their docstrings promise.

Each example runs in a subprocess, as a user would run it, with the session's
``HUBTRANSFER_CACHE_DIR`` so the embedded backbone is converted once per test
session and the Fashion-MNIST features are extracted once. The examples that run
the real backbone are marked slow. The plugin package is installed with pip into
a temporary folder that is put on ``PYTHONPATH``, never into the environment.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import skimage

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PLUGIN = EXAMPLES / "plugin_package"
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"


def run(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> str:
    """Runs a command with the session's cache; returns stdout, failing with the stderr tail."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    result = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{command} exited with {result.returncode}.\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}"
    )
    return result.stdout


def run_example(name: str, *args: str, cwd: Path) -> str:
    return run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd)


def percent(pattern: str, text: str) -> float:
    """The percentage the regex ``pattern`` (with one ``([\\d.]+)%`` group) finds in ``text``."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    return float(match.group(1)) / 100


@pytest.mark.parametrize(
    "script",
    sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.py")),
)
def test_every_example_says_what_it_shows(script: str) -> None:
    tree = ast.parse((EXAMPLES / script).read_text(encoding="utf-8"))
    docstring = ast.get_docstring(tree)
    assert docstring and len(docstring.split()) >= 8, f"{script} needs a docstring"


def test_every_runnable_example_is_tested() -> None:
    tested = {"classify_photo.py", "few_shot.py", "custom_backbone.py", "custom_pipeline.py"}
    # flowers.py needs the internet; make_fashion_mnist_sample.py needs the Debian dataset.
    elsewhere = {"flowers.py", "make_fashion_mnist_sample.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested | elsewhere


@pytest.mark.slow
def test_classify_photo_names_the_cat_by_default(tmp_path: Path) -> None:
    output = run_example("classify_photo.py", cwd=tmp_path)
    lines = output.splitlines()
    assert lines[0].endswith("chelsea.png:")
    assert len(lines) == 6
    assert any(cat in lines[1] for cat in ("Egyptian cat", "tiger cat", "tabby"))


@pytest.mark.slow
def test_classify_photo_takes_any_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # In this process: a second subprocess would only import TensorFlow again.
    main = runpy.run_path(str(EXAMPLES / "classify_photo.py"))["main"]
    photo = shutil.copy(SKIMAGE_DATA / "coffee.png", tmp_path / "my coffee.png")
    main([str(photo), "--top-k", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{photo}:"
    assert len(lines) == 4
    assert "espresso" in lines[1] or "cup" in lines[1]


@pytest.mark.slow
def test_few_shot_identifies_classes_from_five_images_each(tmp_path: Path) -> None:
    output = run_example("few_shot.py", cwd=tmp_path)
    assert "Trained on 30 images: 5 of each of" in output
    assert percent(r"Accuracy on 60 held-out images: ([\d.]+)%", output) >= 0.7
    assert "The 40 strangers" in output
    if "no calibration API" in output:
        return
    rows = re.findall(r"^\s+0\.\d0\s+(\d+)%\s+(\d+)%\s+(\d+)%$", output, re.MULTILINE)
    assert len(rows) == 3, output
    kept = [int(row[0]) for row in rows]
    rejected = [int(row[2]) for row in rows]
    # A higher floor keeps fewer answers and rejects more strangers.
    assert kept == sorted(kept, reverse=True) and rejected == sorted(rejected)


@pytest.mark.slow
def test_custom_backbone_registers_a_local_savedmodel_and_trains_on_it(tmp_path: Path) -> None:
    keep = tmp_path / "models" / "mine"
    output = run_example("custom_backbone.py", "--keep", str(keep), cwd=tmp_path)
    assert (keep / "saved_model.pb").is_file()
    assert f"Inspected {keep}: input 224x224, feature_vector of width 1280" in output
    assert "Registered: ['my_local_fv']" in output
    assert percent(r"accuracy (\d+)% on 100 test images", output) >= 0.7
    assert "Saved and reloaded" in output


@pytest.mark.slow
def test_custom_pipeline_from_the_parts(tmp_path: Path) -> None:
    # The cache's store: the features are there already when custom_backbone.py ran first.
    output = run_example("custom_pipeline.py", cwd=tmp_path)
    assert "10 classes: ankle_boot, bag, coat" in output
    assert re.search(r"Features of 500 images: \d+ needed the backbone", output), output
    assert "the 100 test images again, all from the store" in output
    assert percent(r"Test accuracy ([\d.]+)% on 100 images", output) >= 0.7
    assert "agrees with backbone + head; the label map round-trips" in output


def test_plugin_package_registers_its_backbones(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in examples/.
    source = shutil.copytree(PLUGIN, tmp_path / "plugin_package")
    target = tmp_path / "site"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation]
    run([*pip, "--target", str(target), str(source)], cwd=tmp_path)
    assert (target / "hubtransfer_example_plugin" / "backbones.py").is_file()

    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}
    hubtransfer = [sys.executable, "-m", "hubtransfer", "backbones", "--tag", "example-plugin"]
    listed = run(hubtransfer, cwd=tmp_path, env=env)
    names = [line.split()[0] for line in listed.splitlines()]
    assert names == ["example_inception_resnet_v2_classifier", "example_inception_resnet_v2_fv"]
    assert "299x299    1536  https://tfhub.dev/google/imagenet/inception_resnet_v2/" in listed
    # Without the package on the path, the backbones are not there.
    assert "example_inception" not in run([*hubtransfer[:-2]], cwd=tmp_path)


@pytest.mark.network
def test_flowers_example(tmp_path: Path) -> None:
    # The photos go where the example keeps them (~/.keras/datasets): 218 MB, downloaded once.
    output = run_example("flowers.py", "--epochs", "3", cwd=tmp_path)
    assert "After: the trained head on the same sunflowers" in output
    for picture in ("flowers-grid.png", "flowers-confusion.png", "flowers-curves.png"):
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "flowers-model" / "hubtransfer.json").is_file()
