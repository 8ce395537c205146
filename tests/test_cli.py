"""The ``hubtransfer`` command line (hubtransfer/_cli.py).

Most cases run ``main([...])`` in-process on a tiny registered classifier;
two run real processes: ``python -m hubtransfer`` on the embedded classifier
(slow) and the installed ``hubtransfer`` console script.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import BackboneSpec
from hubtransfer._cli import main
from hubtransfer.testing import tiny_spec

TINY = "tiny_cli_imagenet_logits"
EMBEDDED = {"efficientnet_lite0_embedded_classifier", "efficientnet_lite0_embedded_fv"}
CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Runs the CLI in-process; returns (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[Any, str, str]:
    """Runs the CLI on arguments argparse rejects (it exits through SystemExit)."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    out, err = capsys.readouterr()
    return caught.value.code, out, err


def write_image(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)).save(path)
    return path


def assert_classifications(data: Any, sources: list[str], top_k: int) -> None:
    """Checks the structure of ``classify --json`` output."""
    assert isinstance(data, list)
    assert [item["source"] for item in data] == sources
    for item in data:
        assert set(item) == {"source", "predictions"}
        predictions = item["predictions"]
        assert len(predictions) == top_k
        for prediction in predictions:
            assert set(prediction) == {"label", "index", "score"}
            assert isinstance(prediction["label"], str)
            assert isinstance(prediction["index"], int)
            assert 0.0 <= prediction["score"] <= 1.0
        scores = [p["score"] for p in predictions]
        assert scores == sorted(scores, reverse=True)


@pytest.fixture(scope="module")
def tiny(tiny_models: dict[str, Path]) -> Iterator[BackboneSpec]:
    """A tiny 1001-logit ImageNet-style classifier, registered for this module."""
    spec = tiny_spec(
        tiny_models["logits"],
        name=TINY,
        output="classification",
        output_dim=1001,
        label_offset=1,
        label_set="imagenet",
    )
    hubtransfer.register_backbone(spec)
    try:
        yield spec
    finally:
        hubtransfer.default_registry().unregister(TINY)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_image(tmp_path / "photo.png")


# --- hubtransfer backbones ----------------------------------------------------------------


def test_backbones_lists_every_registered_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "backbones")
    assert code == 0 and err == ""
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == [spec.name for spec in hubtransfer.list_backbones()]
    assert set(listed) >= EMBEDDED
    line = next(line for line in out.splitlines() if line.startswith("efficientnet_lite0_emb"))
    assert "224x224" in line and "embedded://" in line


def test_backbones_tag_offline_lists_the_embedded_pair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "backbones", "--tag", "offline")
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()} == EMBEDDED
    assert len(out.splitlines()) == 2


def test_backbones_kind_keeps_one_output_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backbones", "--kind", "classification")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    expected = hubtransfer.list_backbones(output_kind="classification")
    assert listed == [spec.name for spec in expected] and listed
    assert all(line.split()[1] == "cls" for line in out.splitlines())
    assert "efficientnet_lite0_embedded_fv" not in listed


def test_backbones_json_round_trips_through_from_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "backbones", "--json")
    assert code == 0
    specs = [BackboneSpec.from_json(item) for item in json.loads(out)]
    assert specs == list(hubtransfer.list_backbones())
    code, out, _ = run(capsys, "backbones", "--json", "--tag", "offline")
    assert {item["name"] for item in json.loads(out)} == EMBEDDED


def test_backbones_with_no_match_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "backbones", "--tag", "no-such-tag")
    assert code == 0 and out == ""
    assert "No backbones match" in err
    code, out, _ = run(capsys, "backbones", "--tag", "no-such-tag", "--json")
    assert code == 0 and json.loads(out) == []


def test_backbones_refuses_an_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_usage_error(capsys, "backbones", "--kind", "logits")
    assert code == 2
    assert "usage:" in err and "--kind" in err


# --- hubtransfer classify (tiny classifier) -----------------------------------------------


def test_classify_expands_folders_to_their_image_files(
    capsys: pytest.CaptureFixture[str], tiny: BackboneSpec, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    second = write_image(folder / "b.png", seed=2)
    first = write_image(folder / "a.JPG", seed=1)
    write_image(folder / ".hidden.png", seed=3)
    write_image(folder / "nested" / "c.png", seed=4)  # folders are not searched recursively
    (folder / "notes.txt").write_text("not an image")
    alone = write_image(tmp_path / "alone.bmp", seed=5)
    code, out, err = run(
        capsys, "classify", str(alone), str(folder), "--backbone", TINY, "--top-k", "3", "--json"
    )
    assert code == 0, err
    assert_classifications(json.loads(out), [str(alone), str(first), str(second)], top_k=3)


def test_classify_prints_one_block_per_image(
    capsys: pytest.CaptureFixture[str], tiny: BackboneSpec, image: Path
) -> None:
    code, out, _ = run(capsys, "classify", str(image), "--backbone", TINY, "--top-k", "2")
    assert code == 0
    source, *predictions = out.splitlines()
    assert source == str(image)
    assert len(predictions) == 2
    assert all(line.strip().split("%")[0].replace(".", "").isdigit() for line in predictions)


def test_classify_background_flag(
    capsys: pytest.CaptureFixture[str], tiny: BackboneSpec, image: Path
) -> None:
    base = ("classify", str(image), "--backbone", TINY, "--top-k", "1001", "--json")
    _, out, _ = run(capsys, *base)
    [without] = json.loads(out)
    assert len(without["predictions"]) == 1000
    assert "background" not in {p["label"] for p in without["predictions"]}
    _, out, _ = run(capsys, *base, "--background")
    [with_background] = json.loads(out)
    assert len(with_background["predictions"]) == 1001
    assert "background" in {p["label"] for p in with_background["predictions"]}


@pytest.mark.parametrize("top_k", ["0", "-1", "three"])
def test_a_bad_top_k_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], image: Path, top_k: str
) -> None:
    code, out, err = run_usage_error(capsys, "classify", str(image), "--top-k", top_k)
    assert code == 2
    assert out == ""
    assert "usage: hubtransfer classify" in err
    assert f"--top-k: must be a positive integer, got {top_k!r}" in err


def test_an_empty_folder_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "classify", str(tmp_path))
    assert code == 2
    assert "usage:" in err
    assert "hubtransfer classify: error: no images found" in err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("hubtransfer classify: error: ")
    return lines[0]


def test_an_unknown_backbone_is_one_line_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], image: Path
) -> None:
    code, out, err = run(
        capsys, "classify", str(image), "--backbone", "efficientnet_lite0_embedded_clasifier"
    )
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert "efficientnet_lite0_embedded_clasifier" in line
    assert "Did you mean 'efficientnet_lite0_embedded_classifier'" in line


def test_a_missing_file_is_named(
    capsys: pytest.CaptureFixture[str], tiny: BackboneSpec, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.png"
    code, out, err = run(capsys, "classify", str(missing), "--backbone", TINY)
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert str(missing) in line and "does not exist" in line


def test_a_file_that_is_not_an_image_is_named(
    capsys: pytest.CaptureFixture[str], tiny: BackboneSpec, image: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture\n")
    code, out, err = run(capsys, "classify", str(image), str(notes), "--backbone", TINY, "--json")
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert str(notes) in line


# --- Top level ----------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_usage_error(capsys, "--version")
    assert code == 0
    assert out.strip() == f"hubtransfer {hubtransfer.__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_usage_error(capsys)
    assert code == 2
    assert "usage: hubtransfer" in err


# --- Real processes -----------------------------------------------------------------------


def chelsea() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-image is not installed")
    return Path(spec.origin).parent / "data" / "chelsea.png"


def run_process(command: list[str]) -> subprocess.CompletedProcess[str]:
    # The child inherits this session's cache folder, so the embedded model is reused.
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=environment, check=False
    )


@pytest.mark.slow
def test_python_m_hubtransfer_classifies_a_photo() -> None:
    photo = chelsea()
    result = run_process([sys.executable, "-m", "hubtransfer", "classify", str(photo), "--json"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert_classifications(data, [str(photo)], top_k=5)
    assert data[0]["predictions"][0]["label"] in CAT_LABELS


def test_the_console_script_classifies_with_a_model_folder(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    script = shutil.which("hubtransfer", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "hubtransfer"]
    first = write_image(tmp_path / "one.png", seed=1)
    second = write_image(tmp_path / "two.jpg", seed=2)
    handle = str(tiny_models["logits"])  # a SavedModel folder, inspected as a 1001-way classifier
    arguments = ["classify", str(first), str(second), "--backbone", handle, "--top-k", "4"]
    result = run_process([*command, *arguments, "--json"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert_classifications(data, [str(first), str(second)], top_k=4)
    assert all(p["label"] != "background" for item in data for p in item["predictions"])
