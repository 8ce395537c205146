"""Pictures: each plot writes one valid PNG of a sensible size, atomically, and checks its input."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer._plots import (
    _normalized,
    plot_confusion_matrix,
    plot_prediction_grid,
    plot_reliability_diagram,
    plot_training_curves,
)

FASHION = (
    "ankle_boot", "bag", "coat", "dress", "pullover",
    "sandal", "shirt", "sneaker", "t-shirt_top", "trouser",
)  # fmt: skip


def png_size(path: Path) -> tuple[int, int]:
    """The (width, height) of a PNG, after checking that it is one."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def only_file_in(folder: Path) -> Path:
    """The single file of a folder: no temporary file may be left beside a plot."""
    files = list(folder.iterdir())
    assert len(files) == 1, files
    return files[0]


@pytest.fixture(scope="module")
def fashion_report() -> hubtransfer.EvaluationReport:
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(10), 10)
    predicted = np.where(rng.random(100) < 0.85, true, rng.integers(0, 10, 100))
    return hubtransfer.evaluation_report(true, np.eye(10)[predicted], FASHION)


@pytest.fixture(scope="module")
def history() -> dict[str, list[float]]:
    epochs = np.arange(12)
    return {
        "loss": list(1.5 * np.exp(-epochs / 4) + 0.1),
        "val_loss": list(1.4 * np.exp(-epochs / 5) + 0.3),
        "accuracy": list(1 - 0.8 * np.exp(-epochs / 3)),
        "val_accuracy": list(0.8 - 0.5 * np.exp(-epochs / 3)),
    }


@pytest.fixture(scope="module")
def calibration_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 3.0, (300, 5))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in np.sqrt(probabilities) / np.sqrt(
        probabilities).sum(axis=1, keepdims=True)])  # fmt: skip
    return probabilities, labels


# --- Valid PNGs -----------------------------------------------------------------------------


def test_prediction_grid_has_rows_of_eight(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(16)]
    predicted = [FASHION[i % 10] for i in range(16)]
    true = [FASHION[(i + (i % 7 == 0)) % 10] for i in range(16)]
    path = plot_prediction_grid(images, predicted, tmp_path / "grid.png", true=true, title="x")
    assert path == tmp_path / "grid.png"
    width, height = png_size(path)
    assert (width, height) == (1280, 440)
    assert only_file_in(tmp_path) == path


def test_prediction_grid_takes_rgb_float_and_single_channel_images(tmp_path: Path) -> None:
    images = [np.zeros((10, 12, 3), np.uint8), np.ones((10, 10, 1)), np.full((5, 5), 0.5)]
    path = plot_prediction_grid(images, ["a", "b", "c"], tmp_path / "small.png")
    width, height = png_size(path)
    assert 300 <= width <= 700 and 100 <= height <= 400


@pytest.mark.parametrize("normalize", [None, "true"])
def test_confusion_matrix_of_ten_classes(
    fashion_report: hubtransfer.EvaluationReport, tmp_path: Path, normalize: Any
) -> None:
    path = plot_confusion_matrix(fashion_report, tmp_path / "confusion.png", normalize=normalize)
    width, height = png_size(path)
    assert 600 <= width <= 1200 and 500 <= height <= 1100
    assert only_file_in(tmp_path) == path


def test_normalized_matrices_divide_by_rows_columns_or_everything() -> None:
    matrix = np.array([[3.0, 1.0], [0.0, 4.0], [0.0, 0.0]])
    assert _normalized(matrix, None) is matrix
    assert _normalized(matrix, "true").tolist() == [[0.75, 0.25], [0.0, 1.0], [0.0, 0.0]]
    assert _normalized(matrix, "pred").tolist() == [[1.0, 0.2], [0.0, 0.8], [0.0, 0.0]]
    assert _normalized(matrix, "all").tolist() == [[0.375, 0.125], [0.0, 0.5], [0.0, 0.0]]
    # A class no image was predicted as (an empty column) divides by nothing: zeros.
    assert _normalized(np.array([[2.0, 0.0], [1.0, 0.0]]), "pred").tolist() == [
        [2 / 3, 0.0],
        [1 / 3, 0.0],
    ]


@pytest.mark.parametrize("classes", [2, 25, 120])
def test_confusion_matrix_scales_with_the_number_of_classes(tmp_path: Path, classes: int) -> None:
    rng = np.random.default_rng(classes)
    true = rng.integers(0, classes, 4 * classes)
    names = [f"class_{i}" for i in range(classes)]
    report = hubtransfer.evaluation_report(true, np.eye(classes)[true], names)
    width, height = png_size(plot_confusion_matrix(report, tmp_path / "c.png", title="title"))
    assert 400 <= width <= 3000 and 300 <= height <= 3000


def test_confusion_matrix_of_an_empty_evaluation(tmp_path: Path) -> None:
    report = hubtransfer.evaluation_report(np.zeros(0, np.int64), np.zeros((0, 2)), ["a", "b"])
    png_size(plot_confusion_matrix(report, tmp_path / "empty.png", normalize="true"))


def test_training_curves_with_validation(history: dict[str, list[float]], tmp_path: Path) -> None:
    width, height = png_size(plot_training_curves(history, tmp_path / "curves.png"))
    assert 900 <= width <= 1200 and 350 <= height <= 500


def test_training_curves_mark_the_fine_tuning_phase(
    history: dict[str, list[float]], tmp_path: Path
) -> None:
    tuned = {f"fine_tune_{key}": values[-3:] for key, values in history.items()}
    path = plot_training_curves({**history, **tuned, "lr": [0.1]}, tmp_path / "tuned.png")
    png_size(path)


def test_training_curves_of_loss_alone_have_one_panel(tmp_path: Path) -> None:
    width, _ = png_size(plot_training_curves({"loss": [1.0, 0.5]}, tmp_path / "loss.png"))
    assert 400 <= width <= 600


def test_reliability_diagram(
    calibration_data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    probabilities, labels = calibration_data
    path = plot_reliability_diagram(probabilities, labels, tmp_path / "rel.png", bins=10)
    width, height = png_size(path)
    assert 450 <= width <= 700 and 550 <= height <= 750
    assert only_file_in(tmp_path) == path


def test_plots_replace_an_existing_file_and_create_folders(
    history: dict[str, list[float]], tmp_path: Path
) -> None:
    target = tmp_path / "new" / "folder" / "curves.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    plot_training_curves(history, target)
    png_size(target)
    assert only_file_in(target.parent) == target


def test_a_plot_gets_the_permissions_of_any_new_file(
    history: dict[str, list[float]], tmp_path: Path
) -> None:
    previous = os.umask(0o022)
    try:
        path = plot_training_curves(history, tmp_path / "curves.png")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_unwritable_place_names_the_file(
    history: dict[str, list[float]], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(hubtransfer.HubTransferError, match=r"Cannot write the plot .*curves\.png"):
        plot_training_curves(history, blocker / "curves.png")


def test_plots_leave_pyplot_and_the_backend_alone(tmp_path: Path) -> None:
    # A notebook's or a GUI's backend must survive a plot written to a file.
    script = (
        "import sys, matplotlib\n"
        "from hubtransfer._plots import plot_training_curves\n"
        "plot_training_curves({'loss': [1.0, 0.5]}, sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    target = tmp_path / "curves.png"
    subprocess.run([sys.executable, "-c", script, str(target)], check=True, timeout=120)
    png_size(target)


# --- Wrong inputs -------------------------------------------------------------------------


def test_grid_needs_one_label_per_image(tmp_path: Path) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match="2 images, 1 predictions"):
        plot_prediction_grid([np.zeros((4, 4))] * 2, ["a"], tmp_path / "g.png")
    with pytest.raises(hubtransfer.InvalidParameterError, match="at least one image"):
        plot_prediction_grid([], [], tmp_path / "g.png")
    with pytest.raises(hubtransfer.InvalidParameterError, match="'columns'"):
        plot_prediction_grid([np.zeros((4, 4))], ["a"], tmp_path / "g.png", columns=0)


@pytest.mark.parametrize(
    ("report", "options", "message"),
    [
        ({"accuracy": 1.0}, {}, "must be a hubtransfer.EvaluationReport"),
        (None, {"normalize": "rows"}, "'normalize'"),
        (None, {"normalize": True}, "'normalize'"),
    ],
)
def test_confusion_matrix_rejects(
    fashion_report: hubtransfer.EvaluationReport,
    tmp_path: Path,
    report: Any,
    options: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match=message):
        plot_confusion_matrix(report or fashion_report, tmp_path / "c.png", **options)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([1.0, 0.5], "must be a mapping"),
        ({}, "no 'loss' or 'accuracy'"),
        ({"lr": [0.1, 0.2]}, "no 'loss' or 'accuracy'"),
        ({"loss": 0.5}, r"history\['loss'\] to be a list"),
        ({"loss": "0.5"}, r"history\['loss'\] to be a list"),
        ({"loss": [0.5, None]}, "holds None"),
        ({"loss": [0.5], "val_accuracy": [True]}, "holds True"),
    ],
)
def test_training_curves_reject(tmp_path: Path, history: Any, message: str) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match=message):
        plot_training_curves(history, tmp_path / "t.png")


@pytest.mark.parametrize(
    ("probabilities", "labels", "bins", "message"),
    [
        (np.full((3, 2), 0.5), [0, 1, 1], 0, "'bins'"),
        (np.full((3, 2), 0.5), [0, 1, 1], 2.5, "'bins'"),
        (np.full((3, 2), 0.7), [0, 1, 1], 10, "probabilities"),
        (np.full((3, 2), 0.5), [0, 1], 10, "one label per row"),
        (np.full((3, 2), 0.5), [0, 1, 2], 10, "class indexes"),
        (np.full(3, 0.5), [0, 1, 1], 10, r"\[n, n_classes\]"),
        (np.zeros((0, 2)), np.zeros(0, np.int64), 10, "at least one sample"),
    ],
)
def test_reliability_diagram_rejects(
    tmp_path: Path, probabilities: Any, labels: Any, bins: Any, message: str
) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match=message):
        plot_reliability_diagram(probabilities, labels, tmp_path / "r.png", bins=bins)


@pytest.mark.parametrize("path", [None, 3, ""])
def test_a_path_is_required(history: dict[str, list[float]], path: Any) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match="'path'"):
        plot_training_curves(history, path)


def test_without_matplotlib_the_error_says_how_to_install_it(
    history: dict[str, list[float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes an import fail, as if matplotlib were not installed.
    for module in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(hubtransfer.HubTransferError, match=r"pip install 'hubtransfer\[plots\]'"):
        plot_training_curves(history, tmp_path / "t.png")
    assert list(tmp_path.iterdir()) == []
