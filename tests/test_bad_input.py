"""Bad input, everywhere (issue #5): one battery through the Python API and the CLI.

Every case makes its own files. The Python API must raise the exact
:class:`~hubtransfer.HubTransferError` subclass, with a message naming the
offending value; the CLI must exit non-zero without a traceback:

* a hubtransfer error: exit 1, stderr exactly one line, ``hubtransfer CMD: error: ...``;
* an argument argparse refuses (``--epochs -3``, an unknown ``--format``): exit 2, the
  usage, then one line ``hubtransfer CMD: error: argument ...`` (argparse's convention).

A few inputs that look odd are valid, and the last tests pin them down: ``uint16``
images (scaled to 8 bits), images of any size (resized), and zero images to
``predict`` (zero rows, like :meth:`Preprocessor.batch <hubtransfer.Preprocessor.batch>`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import (
    DatasetError,
    HandleError,
    HeadTrainer,
    ImageDecodeError,
    InvalidParameterError,
    LabelMapError,
    ModelFormatError,
    NotFittedError,
    TransferClassifier,
    UnknownBackboneError,
)
from hubtransfer._cli import main
from hubtransfer.testing import tiny_spec

TINY = "bad_input_tiny_fv"
CLASSES = ("blue", "red")


@dataclass(frozen=True)
class Place:
    """The files of the battery, and a model fitted on ``data``."""

    root: Path
    data: Path
    model: TransferClassifier
    model_dir: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name


def _images(folder: Path, colour: tuple[int, int, int], count: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(colour))
    for index in range(count):
        noise = rng.integers(-20, 20, (32, 32, 3))
        pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")


@pytest.fixture(scope="module")
def place(
    tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Place]:
    hubtransfer.register_backbone(tiny_spec(tiny_models["fv"], name=TINY), replace=True)
    root = tmp_path_factory.mktemp("bad-input")
    data = root / "data"
    _images(data / "blue", (20, 40, 220))
    _images(data / "red", (220, 30, 30))
    _images(root / "one-class" / "only", (20, 40, 220))
    (root / "empty").mkdir()
    (root / "no-images" / "blue").mkdir(parents=True)
    (root / "no-images" / "red").mkdir(parents=True)
    (root / "no-images" / "blue" / "notes.txt").write_text("not an image\n")
    for name in CLASSES:
        (root / "corrupt" / name).mkdir(parents=True)
        for index in range(3):
            (root / "corrupt" / name / f"{index}.png").write_bytes(b"not a png at all")
    _images(root / "other-classes" / "blue", (20, 40, 220), count=1)
    _images(root / "other-classes" / "zebra", (128, 128, 128), count=1)
    (root / "a-file.txt").write_text("I am a file\n")
    (root / "not-a-savedmodel").mkdir()
    (root / "not-a-savedmodel" / "readme.txt").write_text("no saved_model.pb here\n")
    model = TransferClassifier(TINY, epochs=2, validation_split=0, verbose=0).fit(data)
    model_dir = model.save(root / "model")
    try:
        yield Place(root=root, data=data, model=model, model_dir=model_dir)
    finally:
        hubtransfer.default_registry().unregister(TINY)


def fresh(**params: Any) -> TransferClassifier:
    return TransferClassifier(**{"backbone": TINY, "epochs": 1, "verbose": 0, **params})


def batch(shape: tuple[int, ...], dtype: Any = np.uint8, fill: Any = 0) -> np.ndarray:
    return np.full(shape, fill, dtype=dtype)


# --- The Python API -------------------------------------------------------------------------

Case = Callable[[Place], object]
NAN, INF = float("nan"), float("inf")

PARAMETERS = [
    ("epochs", -3), ("epochs", 0), ("epochs", 2.5), ("epochs", True), ("epochs", "3"),
    ("batch_size", -1), ("batch_size", 0), ("batch_size", 1.5), ("batch_size", False),
    ("learning_rate", -0.1), ("learning_rate", 0), ("learning_rate", NAN),
    ("learning_rate", INF), ("learning_rate", "fast"), ("learning_rate", True),
    ("validation_split", -0.1), ("validation_split", 1), ("validation_split", 1.5),
    ("validation_split", NAN), ("validation_split", True),
    ("dropout", 1.0), ("patience", 0), ("seed", -1), ("hidden_units", 0),
    ("extraction_batch_size", 0), ("max_image_pixels", 0), ("on_bad_image", "ignore"),
    ("runtime", "gpu"), ("cache_features", "yes"), ("fine_tune", 0), ("fine_tune_epochs", 0),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), PARAMETERS, ids=[f"{n}={v!r}" for n, v in PARAMETERS])
def test_a_bad_parameter_is_named_at_fit(place: Place, name: str, value: object) -> None:
    expected = f"The {name!r} parameter of TransferClassifier must be "
    with pytest.raises(InvalidParameterError, match=f"^{expected}.*Got {value!r} instead") as info:
        fresh(**{name: value}).fit(place.data)
    assert str(info.value).startswith(expected)


def test_a_bad_parameter_of_head_trainer_is_named(place: Place) -> None:
    features = np.zeros((4, 8), np.float32)
    with pytest.raises(InvalidParameterError, match=r"'epochs' parameter of HeadTrainer .* -3"):
        HeadTrainer(epochs=-3).fit(features, [0, 1, 0, 1])


# (case id, call, exception class, texts the message must contain)
API_CASES: list[tuple[str, Case, type[Exception], tuple[str, ...]]] = [
    # Backbones and handles
    ("unknown backbone", lambda p: TransferClassifier("efficientnet_lite0_embeded_fv").fit(p.data),
     UnknownBackboneError,
     ("'efficientnet_lite0_embeded_fv'", "Did you mean 'efficientnet_lite0_embedded_fv'")),
    ("unknown backbone spec", lambda p: hubtransfer.get_backbone_spec("mobilenet_v3_smal"),
     UnknownBackboneError, ("'mobilenet_v3_smal'", "Did you mean")),
    ("backbone of the wrong type", lambda p: TransferClassifier(3).fit(p.data),  # type: ignore[arg-type]
     InvalidParameterError, ("'backbone'", "Got 3 instead")),
    ("handle: a missing folder", lambda p: TransferClassifier(str(p["no-such-model"])).fit(p.data),
     HandleError, ("no-such-model", "no folder")),
    ("handle: a folder without a SavedModel",
     lambda p: TransferClassifier(str(p["not-a-savedmodel"])).fit(p.data),
     HandleError, ("not-a-savedmodel", "no saved_model.pb")),
    # Folders
    ("fit: a missing folder", lambda p: fresh().fit(p["missing"]),
     DatasetError, ("missing'", "does not exist")),
    ("fit: a file, not a folder", lambda p: fresh().fit(p["a-file.txt"]),
     DatasetError, ("a-file.txt", "is a file, not a folder")),
    ("fit: an empty folder", lambda p: fresh().fit(p["empty"]),
     DatasetError, ("empty'", "holds no class sub-folders")),
    ("fit: one class", lambda p: fresh().fit(p["one-class"]),
     DatasetError, ("at least 2 classes", "['only']")),
    ("fit: class folders without images", lambda p: fresh().fit(p["no-images"]),
     DatasetError, ("no-images/blue", "holds no images")),
    ("fit: every image corrupt, raise", lambda p: fresh(on_bad_image="raise").fit(p["corrupt"]),
     ImageDecodeError, ("6 of 6 image files", "corrupt/blue/0.png", "on_bad_image='skip'")),
    ("fit: every image corrupt, skip", lambda p: fresh(on_bad_image="skip").fit(p["corrupt"]),
     DatasetError, ("['blue', 'red']", "unusable")),
    ("fit: labels with a folder", lambda p: fresh().fit(p.data, ["blue"]),
     InvalidParameterError, ("do not pass y with a folder",)),
    ("fit: images without labels", lambda p: fresh().fit(batch((2, 32, 32, 3))),
     InvalidParameterError, ("ndarray data without labels",)),
    ("fit: y of the wrong length", lambda p: fresh().fit(batch((3, 32, 32, 3)), ["blue", "red"]),
     DatasetError, ("3 paths but 2 labels",)),
    ("fit: image paths that do not exist",
     lambda p: fresh().fit([p["gone.png"], p.data / "red" / "0.png"], ["blue", "red"]),
     ImageDecodeError, ("gone.png", "does not exist")),
    ("fit: zero images", lambda p: fresh().fit(batch((0, 32, 32, 3)), []),
     DatasetError, ("no paths",)),
    # Not fitted
    ("predict before fit", lambda p: fresh().predict(p.data),
     NotFittedError, ("not fitted yet", "fit(")),
    ("predict_proba before fit", lambda p: fresh().predict_proba(p.data),
     NotFittedError, ("not fitted yet",)),
    ("evaluate before fit", lambda p: fresh().evaluate(p.data),
     NotFittedError, ("not fitted yet",)),
    ("score before fit", lambda p: fresh().score(p.data), NotFittedError, ("not fitted yet",)),
    ("save before fit", lambda p: fresh().save(p["unfitted"]), NotFittedError, ("not fitted yet",)),
    ("export before fit", lambda p: fresh().export(p["unfitted"]),
     NotFittedError, ("nothing to export",)),
    ("head predict before fit", lambda p: HeadTrainer().predict_proba(np.zeros((1, 8))),
     NotFittedError, ("HeadTrainer is not fitted",)),
    # Labels that do not match classes_
    ("evaluate: a class name not in classes_",
     lambda p: p.model.evaluate(batch((3, 32, 32, 3)), ["blue", "red", "zebra"]),
     DatasetError, ("['zebra']", "['blue', 'red']")),
    ("score: a class name not in classes_",
     lambda p: p.model.score(batch((2, 32, 32, 3)), ["blue", "zebra"]),
     DatasetError, ("['zebra']",)),
    ("evaluate: an index past classes_",
     lambda p: p.model.evaluate(batch((3, 32, 32, 3)), [0, 1, 7]),
     DatasetError, ("[7]", "out of range for the 2 classes")),
    ("score: a negative index", lambda p: p.model.score(batch((2, 32, 32, 3)), [0, -1]),
     DatasetError, ("[-1]", "out of range")),
    ("evaluate: float labels", lambda p: p.model.evaluate(batch((2, 32, 32, 3)), [0.5, 1.0]),
     DatasetError, ("all class names (str) or all ints", "float")),
    ("evaluate: bool labels", lambda p: p.model.evaluate(batch((2, 32, 32, 3)), [True, False]),
     DatasetError, ("bool",)),
    ("evaluate: y too short", lambda p: p.model.evaluate(batch((3, 32, 32, 3)), ["blue", "red"]),
     DatasetError, ("3 paths but 2 labels",)),
    ("score: y too long", lambda p: p.model.score(batch((1, 32, 32, 3)), ["blue", "red"]),
     DatasetError, ("1 paths but 2 labels",)),
    ("evaluate: images without labels", lambda p: p.model.evaluate(batch((2, 32, 32, 3))),
     InvalidParameterError, ("Labels are needed",)),
    ("evaluate: a folder of other classes", lambda p: p.model.evaluate(p["other-classes"]),
     DatasetError, ("['zebra']", "not among the classes ['blue', 'red']")),
    ("evaluate: a missing folder", lambda p: p.model.evaluate(p["missing"]),
     DatasetError, ("missing'", "does not exist")),
    ("evaluate: a file, not a folder", lambda p: p.model.evaluate(p["a-file.txt"]),
     DatasetError, ("a-file.txt", "is a file")),
    ("evaluate: an empty folder", lambda p: p.model.evaluate(p["empty"]),
     DatasetError, ("empty'", "holds no class sub-folders")),
    ("evaluate: zero images", lambda p: p.model.evaluate(batch((0, 32, 32, 3)), []),
     DatasetError, ("no paths",)),
    ("evaluate: image paths that do not exist",
     lambda p: p.model.evaluate([p["gone.png"]], ["blue"]),
     ImageDecodeError, ("gone.png", "does not exist")),
    ("evaluate: top_k not ints", lambda p: p.model.evaluate(p.data, top_k="5"),  # type: ignore[arg-type]
     InvalidParameterError, ("'top_k'", "Got '5' instead")),
    # What predict is given
    ("predict: a path that does not exist", lambda p: p.model.predict(p["gone.png"]),
     ImageDecodeError, ("gone.png", "does not exist")),
    ("predict: paths that do not exist", lambda p: p.model.predict([p["gone.png"], p["lost.jpg"]]),
     ImageDecodeError, ("2 of the image files", "gone.png", "lost.jpg")),
    ("predict: a folder without images", lambda p: p.model.predict(p["empty"]),
     DatasetError, ("No images found", "empty'")),
    ("predict: None", lambda p: p.model.predict(None), InvalidParameterError, ("Got None",)),
    ("predict: a number", lambda p: p.model.predict(5),
     InvalidParameterError, ("Got 5 of type int",)),
    ("predict: a 0-d array", lambda p: p.model.predict(np.array(5)),
     InvalidParameterError, ("not a sequence of images",)),
    ("predict: a text file", lambda p: p.model.predict(p["a-file.txt"]),
     ImageDecodeError, ("a-file.txt", "looks like text")),
    ("predict: corrupt bytes", lambda p: p.model.predict([b"junk"]),
     ImageDecodeError, ("images[0] (4 bytes)",)),
    ("predict: an item that is not an image", lambda p: p.model.predict([batch((32, 32, 3)), 3]),
     InvalidParameterError, ("images[1] is a int",)),
    ("predict: calibrated not a bool",
     lambda p: p.model.predict_proba(batch((1, 32, 32, 3)), calibrated="no"),  # type: ignore[arg-type]
     InvalidParameterError, ("'calibrated'", "Got 'no' instead")),
    # Arrays of the wrong shape
    ("predict: 1-D array", lambda p: p.model.predict(batch((10,))),
     InvalidParameterError, ("images[0] is a uint8",)),
    ("predict: 2-D array", lambda p: p.model.predict(batch((32, 32))),
     InvalidParameterError, ("images[0] has shape (32,)",)),
    ("predict: 5-D array", lambda p: p.model.predict(batch((1, 2, 32, 32, 3))),
     InvalidParameterError, ("images[0] has shape (2, 32, 32, 3)",)),
    ("predict: 0 channels", lambda p: p.model.predict(batch((2, 32, 32, 0))),
     InvalidParameterError, ("images[0] has shape (32, 32, 0)",)),
    ("predict: 5 channels", lambda p: p.model.predict(batch((2, 32, 32, 5))),
     InvalidParameterError, ("images[0] has shape (32, 32, 5)",)),
    ("predict: zero height", lambda p: p.model.predict(batch((2, 0, 32, 3))),
     InvalidParameterError, ("images[0] has shape (0, 32, 3)", "at least 1")),
    ("fit: 1-D array", lambda p: fresh().fit(batch((10,)), ["blue", "red"] * 5),
     DatasetError, ("[n, h, w] or [n, h, w, c]", "(10,)")),
    ("fit: 2-D array", lambda p: fresh().fit(batch((4, 32)), ["blue", "red"] * 2),
     DatasetError, ("(4, 32)",)),
    ("fit: 5-D array", lambda p: fresh().fit(batch((2, 1, 32, 32, 3)), ["blue", "red"]),
     DatasetError, ("(2, 1, 32, 32, 3)",)),
    ("fit: 5 channels", lambda p: fresh().fit(batch((2, 32, 32, 5)), ["blue", "red"]),
     InvalidParameterError, ("images[0] has shape (32, 32, 5)",)),
    # Arrays of the wrong dtype or range
    *[
        (f"predict: {name}", (lambda p, a=array: p.model.predict(a)),
         InvalidParameterError, needles)
        for name, array, needles in [
            ("complex", batch((2, 32, 32, 3), np.complex64), ("dtype complex64",)),
            ("object", batch((2, 32, 32, 3), object, None), ("dtype object",)),
            ("strings", batch((2, 32, 32, 3), "<U1", "x"), ("dtype <U1",)),
            ("bool", batch((2, 32, 32, 3), bool), ("dtype bool",)),
            ("int64", batch((2, 32, 32, 3), np.int64, 100), ("dtype int64", "astype(numpy.uint8)")),
            ("float NaN", batch((2, 32, 32, 3), np.float64, NAN), ("values in [nan, nan]",)),
            ("float inf", batch((2, 32, 32, 3), np.float32, INF), ("values in [inf, inf]",)),
            ("negative floats", batch((2, 32, 32, 3), np.float32, -0.5), ("[-0.5, -0.5]",)),
            ("floats 0-255", batch((2, 32, 32, 3), np.float32, 200.0),
             ("[200, 200]", "divide by 255")),
        ]
    ],
    ("fit: complex images",
     lambda p: fresh().fit(batch((2, 32, 32, 3), np.complex64), ["blue", "red"]),
     InvalidParameterError, ("dtype complex64",)),
    ("fit: NaN images",
     lambda p: fresh().fit(batch((2, 32, 32, 3), np.float32, NAN), ["blue", "red"]),
     InvalidParameterError, ("nan",)),
    # Features given to the head
    ("head fit: complex features",
     lambda p: HeadTrainer(epochs=1, verbose=0).fit(np.zeros((4, 8), np.complex64), [0, 1, 0, 1]),
     DatasetError, ("dtype complex64",)),
    ("head fit: string features",
     lambda p: HeadTrainer(epochs=1, verbose=0).fit(np.full((4, 8), "1"), [0, 1, 0, 1]),
     DatasetError, ("dtype <U1",)),
    ("head fit: NaN features",
     lambda p: HeadTrainer(epochs=1, verbose=0).fit(np.full((4, 8), NAN), [0, 1, 0, 1]),
     DatasetError, ("NaN or infinite",)),
    ("head fit: 1-D features", lambda p: HeadTrainer(epochs=1).fit(np.zeros(8), [0, 1]),
     DatasetError, ("(8,)",)),
    ("head fit: labels of the wrong length",
     lambda p: HeadTrainer(epochs=1).fit(np.zeros((4, 8)), [0, 1]),
     DatasetError, ("matching 4 features", "(2,)")),
    ("head fit: negative labels", lambda p: HeadTrainer(epochs=1).fit(np.zeros((2, 8)), [0, -1]),
     DatasetError, ("non-negative integer",)),
    ("head predict: wrong width", lambda p: p.model.trainer_.predict_proba(np.zeros((2, 5))),
     InvalidParameterError, ("[n, 8]", "(2, 5)")),
    ("head predict: complex", lambda p: p.model.trainer_.predict_proba(np.zeros((2, 8), complex)),
     InvalidParameterError, ("dtype complex128",)),
    ("head predict: NaN", lambda p: p.model.trainer_.predict_proba(np.full((2, 8), NAN)),
     InvalidParameterError, ("NaN or infinite",)),
    # Options of predict, export and load
    *[
        (f"min_confidence={value!r}",
         (lambda p, v=value: p.model.predict(batch((1, 32, 32, 3)), min_confidence=v)),
         InvalidParameterError, ("'min_confidence'", f"Got {value!r} instead"))
        for value in (-0.1, 1.5, NAN, "high", True)
    ],
    ("unknown_label that is a class",
     lambda p: p.model.predict(batch((1, 32, 32, 3)), min_confidence=0.5, unknown_label="red"),
     InvalidParameterError, ("'red'", "also a class name")),
    ("export: an unknown format", lambda p: p.model.export(p["export"], format="onnx"),  # type: ignore[arg-type]
     InvalidParameterError, ("'format'", "Got 'onnx' instead")),
    ("export: an unknown quantization",
     lambda p: p.model.export(p["export"], format="tflite", quantization="int4"),  # type: ignore[arg-type]
     InvalidParameterError, ("'quantization'", "Got 'int4' instead")),
    ("export: int8 without data",
     lambda p: p.model.export(p["export"], format="tflite", quantization="int8"),
     InvalidParameterError, ("quantization='int8' needs representative_data",)),
    ("export: onto a file", lambda p: p.model.export(p["a-file.txt"]),
     InvalidParameterError, ("a-file.txt", "not a folder")),
    ("load: a missing folder", lambda p: TransferClassifier.load(p["missing"]),
     ModelFormatError, ("missing'", "No saved model folder")),
    ("load: a data folder", lambda p: TransferClassifier.load(p.data),
     ModelFormatError, ("data'", "no hubtransfer.json")),
    ("load: a file", lambda p: TransferClassifier.load(p["a-file.txt"]),
     ModelFormatError, ("a-file.txt",)),
    ("set_params: an unknown name", lambda p: fresh().set_params(epoch=3),
     InvalidParameterError, ("'epoch' is not a parameter",)),
    ("label map: a duplicate", lambda p: hubtransfer.LabelMap(["a", "a"]),
     LabelMapError, ("'a' appears twice",)),
    ("preprocessor: not a list", lambda p: p.model.preprocessor_.batch(3),  # type: ignore[arg-type]
     InvalidParameterError, ("Got 3 of type int",)),
    ("preprocessor: a missing file", lambda p: p.model.preprocessor_.load(p["gone.png"]),
     ImageDecodeError, ("gone.png", "does not exist")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "needles"),
    [pytest.param(call, error, needles, id=name) for name, call, error, needles in API_CASES],
)
def test_the_api_raises_the_exact_error_naming_the_value(
    place: Place, call: Case, error: type[Exception], needles: tuple[str, ...]
) -> None:
    with pytest.raises(hubtransfer.HubTransferError) as info:
        call(place)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value).replace(str(place.root) + os.sep, "")
    for needle in needles:
        assert needle in message or needle in str(info.value), message


def test_bad_input_never_leaves_a_model_or_export_behind(place: Place) -> None:
    for name in ("unfitted", "export"):
        assert not place[name].exists()


# --- The CLI ------------------------------------------------------------------------------

# (argv, exit code, texts the last stderr line must contain); {root}, {data} and {model}
# are filled in. Training commands get the tiny backbone and --quiet unless they name one.
CLI_CASES: list[tuple[list[str], int, tuple[str, ...]]] = [
    (["train", "{data}", "--backbone", "efficientnet_lite0_embeded_fv"], 1,
     ("'efficientnet_lite0_embeded_fv'", "Did you mean 'efficientnet_lite0_embedded_fv'")),
    (["train", "{data}", "--backbone", "{root}/no-such-model"], 1, ("no-such-model", "no folder")),
    (["train", "{data}", "--backbone", "{root}/not-a-savedmodel"], 1, ("no saved_model.pb",)),
    (["train", "{data}", "--epochs", "-3"], 2, ("--epochs", "positive integer", "'-3'")),
    (["train", "{data}", "--epochs", "0"], 2, ("--epochs", "'0'")),
    (["train", "{data}", "--epochs", "2.5"], 2, ("--epochs", "'2.5'")),
    (["train", "{data}", "--batch-size", "-1"], 2, ("--batch-size", "'-1'")),
    (["train", "{data}", "--learning-rate", "abc"], 2, ("--learning-rate", "'abc'")),
    (["train", "{data}", "--learning-rate", "-1"], 1, ("'learning_rate'", "Got -1.0 instead")),
    (["train", "{data}", "--learning-rate", "nan"], 1, ("'learning_rate'", "Got nan instead")),
    (["train", "{data}", "--validation-split", "1.5"], 1, ("'validation_split'", "Got 1.5")),
    (["train", "{data}", "--validation-split", "-0.5"], 1, ("'validation_split'", "Got -0.5")),
    (["train", "{data}", "--dropout", "2"], 1, ("'dropout'", "Got 2.0")),
    (["train", "{root}/missing"], 1, ("missing'", "does not exist")),
    (["train", "{root}/a-file.txt"], 1, ("a-file.txt", "is a file, not a folder")),
    (["train", "{root}/empty"], 1, ("empty'", "holds no class sub-folders")),
    (["train", "{root}/one-class"], 1, ("at least 2 classes",)),
    (["train", "{root}/no-images"], 1, ("no-images/blue", "holds no images")),
    (["train", "{root}/corrupt"], 1, ("6 of 6 image files", "corrupt/blue/0.png")),
    (["train", "{root}/corrupt", "--on-bad-image", "skip"], 1, ("unusable",)),
    (["train", "{data}", "--on-bad-image", "ignore"], 2, ("--on-bad-image", "'ignore'")),
    (["predict", "{root}/missing", "{data}"], 1, ("missing'", "No saved model folder")),
    (["predict", "{data}", "{data}"], 1, ("no hubtransfer.json",)),
    (["predict", "{model}", "{root}/gone.png"], 1, ("gone.png", "does not exist")),
    (["predict", "{model}", "{root}/empty"], 2, ("no images found",)),
    (["predict", "{model}", "{root}/a-file.txt"], 1, ("a-file.txt", "looks like text")),
    (["predict", "{model}", "{data}", "--min-confidence", "2"], 2, ("--min-confidence", "'2'")),
    (["predict", "{model}", "{data}", "--top-k", "0"], 2, ("--top-k", "'0'")),
    (["evaluate", "{root}/missing", "{data}"], 1, ("No saved model folder",)),
    (["evaluate", "{model}", "{root}/missing"], 1, ("missing'", "does not exist")),
    (["evaluate", "{model}", "{root}/a-file.txt"], 1, ("a-file.txt", "is a file")),
    (["evaluate", "{model}", "{root}/empty"], 1, ("holds no class sub-folders",)),
    (["evaluate", "{model}", "{root}/other-classes"], 1, ("['zebra']", "['blue', 'red']")),
    (["evaluate", "{model}", "{root}/no-images"], 1, ("holds no images",)),
    (["evaluate", "{model}", "{root}/corrupt"], 1, ("corrupt/blue/0.png",)),
    (["evaluate", "{model}", "{data}", "--bins", "0"], 2, ("--bins", "'0'")),
    (["export", "{model}", "{root}/export", "--format", "onnx"], 2, ("--format", "'onnx'")),
    (["export", "{root}/missing", "{root}/export"], 1, ("No saved model folder",)),
    (["export", "{model}", "{root}/a-file.txt"], 1, ("a-file.txt", "not a folder")),
    (["export", "{model}", "{root}/export", "--format", "tflite", "--quantization", "int8"], 1,
     ("representative_data",)),
    (["classify", "{root}/gone.png"], 1, ("gone.png", "does not exist")),
    (["classify", "{root}/empty"], 2, ("no images found",)),
    (["check", "{root}/missing"], 1, ("missing'", "does not exist")),
    (["check", "{root}/a-file.txt"], 1, ("is a file, not a folder",)),
    (["check", "{root}/empty"], 1, ("holds no class sub-folders",)),
]  # fmt: skip


def fill(argv: list[str], place: Place) -> list[str]:
    values = {"root": place.root, "data": place.data, "model": place.model_dir}
    filled = [part.format(**values) for part in argv]
    if filled[0] == "train":
        if "--backbone" not in filled:
            filled += ["--backbone", TINY]
        filled += ["--out", str(place["cli-model"]), "--quiet"]
    return filled


@pytest.mark.parametrize(
    ("argv", "code", "needles"),
    [pytest.param(argv, code, needles, id=" ".join(argv)) for argv, code, needles in CLI_CASES],
)
def test_the_cli_exits_non_zero_with_one_error_line(
    place: Place,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    needles: tuple[str, ...],
) -> None:
    filled = fill(argv, place)
    try:
        returned: Any = main(filled)
    except SystemExit as exit_:  # argparse refuses the arguments
        returned = exit_.code
    out, err = capsys.readouterr()
    assert returned == code, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    prefix = f"hubtransfer {argv[0]}: error: "
    if code == 1:
        assert len(lines) == 1, err
    else:
        assert lines[0].startswith("usage: hubtransfer"), err
    assert lines[-1].startswith(prefix), err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    assert not place["cli-model"].exists()
    assert not place["export"].exists()


def test_a_real_process_answers_bad_arguments_without_a_traceback(place: Place) -> None:
    # TensorFlow's C++ start-up logging must not reach stderr either.
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "hubtransfer"]
    for argv, code, needle in [
        (["evaluate", str(place.model_dir), str(place["missing"])], 1, "does not exist"),
        (["train", str(place.data), "--out", str(place["m"]), "--epochs", "-3"], 2, "--epochs"),
    ]:
        result = subprocess.run(
            [*command, *argv], capture_output=True, text=True, timeout=300, env=environment,
            check=False,
        )  # fmt: skip
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert lines[-1].startswith(f"hubtransfer {argv[0]}: error: ") and needle in lines[-1]
        assert len(lines) == 1 if code == 1 else lines[0].startswith("usage:"), result.stderr


# --- Inputs that look odd but are valid ----------------------------------------------------


def test_uint16_images_are_scaled_to_eight_bits(place: Place) -> None:
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    sixteen = eight.astype(np.uint16) * 257
    expected = place.model.predict_proba(eight)
    np.testing.assert_allclose(place.model.predict_proba(sixteen), expected, atol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (7, 300), (64, 64)])
def test_images_of_any_size_are_resized(place: Place, size: tuple[int, int]) -> None:
    probabilities = place.model.predict_proba(batch((2, *size, 3), np.uint8, 128))
    assert probabilities.shape == (2, 2)


def test_zero_images_give_zero_rows(place: Place) -> None:
    assert place.model.predict_proba(batch((0, 32, 32, 3))).shape == (0, 2)
    assert place.model.predict_proba([]).shape == (0, 2)
    assert place.model.predict([]).shape == (0,)
