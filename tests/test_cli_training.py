"""`hubtransfer train`, `predict` and `evaluate`, on folders and a tiny backbone made here."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer._cli import main
from hubtransfer.testing import tiny_spec

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}


def make_folder(root: Path, per_class: int = 10, seed: int = 0) -> Path:
    """Class folders whose images differ by colour: learnable by the tiny backbone."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            noise = rng.integers(-25, 25, (32, 32, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    return root


@pytest.fixture(scope="module")
def tiny_name(tiny_models: dict[str, Path]) -> Iterator[str]:
    spec = tiny_spec(tiny_models["fv"], name="cli_tiny_fv")
    hubtransfer.register_backbone(spec, replace=True)
    yield spec.name
    hubtransfer.default_registry().unregister(spec.name)


@pytest.fixture(scope="module")
def trained(tiny_name: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("cli-train")
    data = make_folder(root / "data")
    test = make_folder(root / "test", per_class=4, seed=1)
    model = root / "model"
    code = main(
        [
            "train", str(data), "--out", str(model), "--backbone", tiny_name,
            "--epochs", "40", "--learning-rate", "0.05", "--quiet", "--seed", "3",
        ]
    )  # fmt: skip
    assert code == 0
    return model, test, tiny_name


def test_train_saves_a_loadable_model_and_its_split(trained: tuple[Path, Path, str]) -> None:
    model_dir, _, _ = trained
    assert (model_dir / "hubtransfer.json").is_file()
    # Inside the model folder: the split and the model it trained are one atomic write.
    split = hubtransfer.DataSplit.load(model_dir / "split.json")
    assert not (model_dir.parent / "model.split.json").exists()
    assert split.classes == ("blue", "green", "red")
    assert len(split.validation) == 6
    model = hubtransfer.TransferClassifier.load(model_dir)
    assert list(model.classes_) == ["blue", "green", "red"]


def test_train_prints_split_epochs_and_report(
    tiny_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_folder(tmp_path / "data", per_class=5)
    code = main(["train", str(data), "--out", str(tmp_path / "m"), "--backbone", tiny_name,
                 "--epochs", "2"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert "Split (seed 0): 12 train, 3 validation images." in captured.err
    assert "Epoch 2/2" in captured.out
    assert "Validation report:" in captured.out
    assert "accuracy" in captured.out


def test_predict_json_and_top_k(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, test, _ = trained
    code = main(["predict", str(model_dir), str(test / "red"), "--top-k", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    results = json.loads(captured.out)
    assert len(results) == 4
    assert all(len(r["predictions"]) == 2 for r in results)
    assert [r["predictions"][0]["label"] for r in results] == ["red"] * 4


def test_predict_writes_a_grid(trained: tuple[Path, Path, str], tmp_path: Path) -> None:
    model_dir, test, _ = trained
    grid = tmp_path / "grid.png"
    assert main(["predict", str(model_dir), str(test), "--plot", str(grid)]) == 0
    with Image.open(grid) as image:
        assert image.format == "PNG"
        assert image.size[0] > 300


def test_evaluate_json_report(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, test, _ = trained
    assert main(["evaluate", str(model_dir), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_samples"] == 12
    model = hubtransfer.TransferClassifier.load(model_dir)
    collection = hubtransfer.scan_image_folder(test)
    predicted = model.predict(list(collection.paths))
    truth = [collection.classes[label] for label in collection.labels]
    assert report["accuracy"] == pytest.approx(np.mean(predicted == np.array(truth)))
    assert np.array(report["confusion_matrix"]).trace() == round(report["accuracy"] * 12)
    assert report["accuracy"] > 1 / 3


def test_train_with_evaluate_and_plot(
    tiny_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_folder(tmp_path / "data", per_class=6)
    test = make_folder(tmp_path / "test", per_class=2, seed=4)
    grid = tmp_path / "grid.png"
    code = main(["train", str(data), "--out", str(tmp_path / "m"), "--backbone", tiny_name,
                 "--epochs", "3", "--quiet", "--evaluate", str(test),
                 "--plot", str(grid)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert f"Evaluation on {str(test)!r}:" in out
    assert grid.is_file()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "{missing}", "--out", "{tmp}/m"], "does not exist"),
        (["train", "{one_class}", "--out", "{tmp}/m"], "at least 2 classes"),
        (["evaluate", "{tmp}/no-model", "{tmp}"], "No saved model folder"),
        (["predict", "{tmp}/no-model", "{tmp}"], "No saved model folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    argv: list[str],
    needle: str,
    tiny_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_class = tmp_path / "one"
    (one_class / "only").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(one_class / "only" / "a.png")
    Image.new("RGB", (32, 32)).save(one_class / "only" / "b.png")
    values = {
        "missing": str(tmp_path / "missing"),
        "tmp": str(tmp_path),
        "one_class": str(one_class),
    }
    filled = [part.format(**values) for part in argv]
    if filled[0] == "train":
        filled += ["--backbone", tiny_name, "--quiet"]
    code = main(filled)
    err = capsys.readouterr().err
    assert code == 1
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_bad_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--epochs", "-3"])
    assert caught.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_a_real_process_prints_one_error_line(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "hubtransfer", "classify", str(tmp_path / "nope.jpg")],
        capture_output=True, text=True, timeout=300, env=environment, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "nope.jpg" in lines[0]


def test_importing_hubtransfer_does_not_load_tensorflow() -> None:
    code = "import sys, hubtransfer; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"


# --- Calibration and export (hubtransfer._calibration, hubtransfer._export) ----------------------


def test_predict_min_confidence_answers_unknown(
    trained: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    model, test, _ = trained
    assert main(["predict", str(model), str(test / "red"), "--min-confidence", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert {r["label"] for r in results} == {"unknown"}
    assert all(r["predictions"][0]["label"] == "red" for r in results)
    assert main(["predict", str(model), str(test / "red"), "--min-confidence", "0"]) == 0
    assert "unknown" not in capsys.readouterr().out


def test_predict_rejects_a_min_confidence_outside_0_to_1(trained: tuple[Path, Path, str]) -> None:
    model, test, _ = trained
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(model), str(test), "--min-confidence", "1.5"])
    assert exit_info.value.code == 2


def test_export_writes_a_tflite_model(
    trained: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = trained[0]
    out = tmp_path / "export"
    assert main(["export", str(model), str(out), "--format", "tflite"]) == 0
    assert "Exported tflite (float32)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "hubtransfer-export.json",
        "labels.txt",
        "model.tflite",
    ]
    assert (out / "labels.txt").read_text().split() == sorted(COLOURS)
    code = main(["export", str(model), str(out), "--format", "tflite", "--quantization", "int8"])
    assert code == 1
    assert "needs representative_data" in capsys.readouterr().err


def test_train_curves_and_evaluate_confusion_matrix_pictures(
    trained: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, test, tiny_name = trained
    data = make_folder(tmp_path / "data", per_class=5)
    curves = tmp_path / "curves.png"
    code = main(["train", str(data), "--out", str(tmp_path / "m"), "--backbone", tiny_name,
                 "--epochs", "2", "--quiet", "--curves", str(curves)])  # fmt: skip
    assert code == 0
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    confusion = tmp_path / "confusion.png"
    code = main(["evaluate", str(model_dir), str(test), "--json", "--plot", str(confusion),
                 "--normalize", "true"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert confusion.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(captured.out)["n_samples"] == 12  # stdout stays pure JSON
    assert "Wrote the confusion matrix" in captured.err


def test_evaluate_writes_a_reliability_diagram(
    trained: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir, test, _ = trained
    diagram = tmp_path / "out" / "reliability.png"
    code = main(["evaluate", str(model_dir), str(test), "--json", "--reliability", str(diagram),
                 "--bins", "5"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert diagram.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert diagram.stat().st_size > 10_000
    with Image.open(diagram) as image:
        image.verify()
        assert image.format == "PNG"
        assert 450 <= image.size[0] <= 700 and 550 <= image.size[1] <= 750
    assert sorted(p.name for p in diagram.parent.iterdir()) == ["reliability.png"]
    # The report is the one evaluate gives without the diagram; stdout stays pure JSON.
    report = json.loads(captured.out)
    assert main(["evaluate", str(model_dir), str(test), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == report
    assert f"Wrote the reliability diagram to {str(diagram)!r}." in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "{model}", "{test}", "--reliability", "{out}/picture.png"],
        ["evaluate", "{model}", "{test}", "--plot", "{out}/picture.png"],
        ["predict", "{model}", "{test}", "--plot", "{out}/picture.png"],
        ["train", "{test}", "--out", "{out}/m", "--backbone", "{backbone}", "--curves",
         "{out}/picture.png"],
    ],
    ids=["evaluate-reliability", "evaluate-plot", "predict-plot", "train-curves"],
)  # fmt: skip
def test_a_picture_flag_without_matplotlib_is_one_line_before_any_work(
    argv: list[str],
    trained: tuple[Path, Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_dir, test, backbone = trained
    out = tmp_path / "out"
    filled = [part.format(model=model_dir, test=test, out=out, backbone=backbone) for part in argv]
    # None in sys.modules makes an import fail, as if matplotlib were not installed.
    for module in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = main(filled)
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err.splitlines() == [
        f"hubtransfer {argv[0]}: error: Plots need matplotlib: pip install 'hubtransfer[plots]'."
    ]
    assert not out.exists()  # nothing trained, saved or drawn


def test_train_fine_tunes_with_augmentation(
    tiny_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_folder(tmp_path / "data", per_class=6)
    model_dir = tmp_path / "model"
    code = main(
        [
            "train", str(data), "--out", str(model_dir), "--backbone", tiny_name,
            "--epochs", "5", "--learning-rate", "0.05", "--quiet",
            "--fine-tune", "all", "--fine-tune-epochs", "1",
            "--fine-tune-learning-rate", "0.001", "--augment",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Fine-tuning: " in out and "1 epochs in" in out
    loaded = hubtransfer.TransferClassifier.load(model_dir)
    assert loaded.fine_tune == "all" and loaded.fine_tune_epochs == 1
    assert loaded.augmentation is not False
    assert loaded.backbone_.spec.name == f"{tiny_name}_finetuned"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--fine-tune", "0"], "--fine-tune: must be a positive number of layers or 'all'"),
        (["--fine-tune", "top"], "--fine-tune: must be a positive number of layers or 'all'"),
        (["--augment"], "needs 'fine_tune'"),
    ],
)
def test_train_refuses_bad_fine_tune_options(
    tiny_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    data = make_folder(tmp_path / "data", per_class=2)
    argv = ["train", str(data), "--out", str(tmp_path / "m"), "--backbone", tiny_name]
    # argparse refuses a bad value itself (exit 2); the library refuses --augment alone.
    refused_by_argparse = arguments[0] == "--fine-tune"
    with pytest.raises(SystemExit) if refused_by_argparse else contextlib.nullcontext():
        assert main([*argv, "--quiet", *arguments]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "m").exists()
