"""Exporting a fitted classifier: SavedModel, Keras, and TFLite at four quantisations.

The fast tests export a classifier trained on 32x32 colour images with the
tiny backbone (each conversion takes a second or two) and check that every
format reloads and agrees with the classifier it came from. One slow test
does the same for the embedded EfficientNet-Lite0 on the Fashion-MNIST sample.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import (
    DatasetError,
    InvalidParameterError,
    NotFittedError,
    TransferClassifier,
)
from hubtransfer._calibration import apply_temperature
from hubtransfer._export import EXPORT_METADATA, ExportError, export_model
from hubtransfer.testing import tiny_spec

EXAMPLES = Path(__file__).parent.parent / "examples" / "data"
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}
CLASSES = sorted(COLOURS)
FAST = {"epochs": 10, "learning_rate": 0.3, "batch_size": 8, "verbose": 0}


def write_colour_folder(root: Path, *, per_class: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            noise = rng.normal(0.0, 25.0, (32, 32, 3))
            pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{index:02d}.png")
    return root


def image_paths(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def pixel_batch(model: TransferClassifier, paths: list[Path]) -> np.ndarray:
    """Images as the TFLite exports take them: resized RGB pixels in [0, 255]."""
    contract = model.backbone_.spec.preprocessing
    pixels = dataclasses.replace(contract, value_range=(0.0, 255.0), mean=None, std=None)
    return hubtransfer.Preprocessor(pixels).batch(paths)


def run_tflite(file: Path, pixels: np.ndarray) -> np.ndarray:
    """Dequantised probabilities of a TFLite export, one image per invoke."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(file))
    interpreter.allocate_tensors()
    [source] = interpreter.get_input_details()
    [result] = interpreter.get_output_details()
    outputs = []
    for image in pixels:
        if source["dtype"] == np.uint8:
            batch = np.clip(np.round(image), 0, 255).astype(np.uint8)[None]
        else:
            batch = image[None].astype(np.float32)
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        output = interpreter.get_tensor(result["index"])[0].astype(np.float64)
        scale, zero_point = result["quantization"]
        outputs.append(scale * (output - zero_point) if scale else output)
    return np.asarray(outputs)


def sidecar(folder: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((folder / EXPORT_METADATA).read_text("utf8"))
    return result


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colours"), per_class=12, seed=0)


@pytest.fixture(scope="module")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return image_paths(write_colour_folder(tmp_path_factory.mktemp("test"), per_class=10, seed=1))


@pytest.fixture(scope="module")
def fitted(colours: Path, tiny_models: dict[str, Path]) -> TransferClassifier:
    return TransferClassifier(backbone=tiny_spec(tiny_models["fv"]), **FAST).fit(colours)


@pytest.fixture(scope="module")
def reference(fitted: TransferClassifier, test_images: list[Path]) -> np.ndarray:
    """The classifier's own probabilities for the test images."""
    return fitted.predict_proba(test_images)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


# --- Server formats ---------------------------------------------------------------------------


def test_saved_model_matches_predict_proba(
    fitted: TransferClassifier, test_images: list[Path], reference: np.ndarray, exports: Path
) -> None:
    import tensorflow as tf
    import tensorflow_hub as hub

    folder = export_model(fitted, exports / "saved_model")
    assert folder == exports / "saved_model"
    images = fitted.preprocessor_.batch(test_images)
    loaded = tf.saved_model.load(str(folder))
    np.testing.assert_allclose(loaded(images).numpy(), reference, atol=1e-5)
    signature = loaded.signatures["serving_default"]
    outputs = signature(images=tf.constant(images))
    assert list(outputs) == ["probabilities"]
    np.testing.assert_allclose(outputs["probabilities"].numpy(), reference, atol=1e-5)
    # A reusable SavedModel: TF-Hub loads it as a layer.
    np.testing.assert_allclose(hub.KerasLayer(str(folder))(images).numpy(), reference, atol=1e-5)
    description = sidecar(folder)
    assert description["export_format"] == "saved_model"
    assert description["model"] == "."
    assert description["input"]["dtype"] == "float32"
    assert description["input"]["shape"] == [None, 32, 32, 3]
    assert description["input"]["range"] == [0.0, 1.0]
    assert description["input"]["scaling"] == "by the caller"
    assert description["output"]["shape"] == [None, 3]


def test_keras_export_loads_without_the_original_backbone(
    fitted: TransferClassifier, test_images: list[Path], reference: np.ndarray, tmp_path: Path
) -> None:
    import tensorflow_hub as hub
    import tf_keras

    # Export from a loaded copy, then delete the copy: the export must not need its files.
    copy = TransferClassifier.load(fitted.save(tmp_path / "model"))
    folder = export_model(copy, tmp_path / "keras", format="keras")
    shutil.rmtree(tmp_path / "model")
    images = fitted.preprocessor_.batch(test_images)
    for custom_objects in (None, {"KerasLayer": hub.KerasLayer}):
        model = tf_keras.models.load_model(str(folder), custom_objects=custom_objects)
        np.testing.assert_allclose(model(images).numpy(), reference, atol=1e-5)
    description = sidecar(folder)
    assert description["export_format"] == "keras"
    assert description["input"] == sidecar_input_of_saved_model(fitted)


def sidecar_input_of_saved_model(model: TransferClassifier) -> dict[str, Any]:
    height, width = model.backbone_.spec.input_size
    return {
        "name": "images",
        "dtype": "float32",
        "shape": [None, height, width, 3],
        "layout": "NHWC",
        "channels": "RGB",
        "range": [0.0, 1.0],
        "scaling": "by the caller",
        "quantization": None,
        "description": (
            f"RGB images resized to {height}x{width} (bilinear), scaled to [0.0, 1.0]: the "
            "output of hubtransfer.Preprocessor for the preprocessing contract below."
        ),
    }


# --- TFLite -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("quantization", "atol"), [("float32", 1e-4), ("float16", 1e-2)])
def test_float_tflite_agrees_with_the_keras_model(
    fitted: TransferClassifier,
    test_images: list[Path],
    reference: np.ndarray,
    exports: Path,
    quantization: str,
    atol: float,
) -> None:
    folder = export_model(
        fitted, exports / f"tflite-{quantization}", format="tflite", quantization=quantization
    )  # type: ignore[arg-type]
    probabilities = run_tflite(folder / "model.tflite", pixel_batch(fitted, test_images))
    agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
    difference = float(np.abs(probabilities - reference).max())
    print(f"\nTFLite {quantization}: top-1 agreement {agreement:.1%}, max |diff| {difference:.2g}")
    assert agreement >= 0.99
    assert difference < atol
    description = sidecar(folder)
    assert description["quantization"] == quantization
    assert description["model"] == "model.tflite"
    assert description["input"]["dtype"] == "float32"
    assert description["input"]["shape"] == [1, 32, 32, 3]
    assert description["input"]["range"] == [0.0, 255.0]
    assert description["input"]["scaling"] == "in the model"
    assert description["output"]["dtype"] == "float32"
    assert description["output"]["quantization"] is None


@pytest.mark.parametrize("quantization", ["dynamic_int8", "int8"])
def test_int8_tflite_mostly_agrees(
    fitted: TransferClassifier,
    colours: Path,
    test_images: list[Path],
    reference: np.ndarray,
    exports: Path,
    quantization: str,
) -> None:
    folder = export_model(
        fitted,
        exports / f"tflite-{quantization}",
        format="tflite",
        quantization=quantization,  # type: ignore[arg-type]
        representative_data=colours if quantization == "int8" else None,
    )
    probabilities = run_tflite(folder / "model.tflite", pixel_batch(fitted, test_images))
    agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
    difference = float(np.abs(probabilities - reference).max())
    print(f"\nTFLite {quantization}: top-1 agreement {agreement:.1%}, max |diff| {difference:.2g}")
    assert agreement >= 0.8
    description = sidecar(folder)
    if quantization == "int8":
        # Raw image bytes go in: uint8 with scale 1 and zero point 0.
        assert description["input"]["dtype"] == "uint8"
        assert description["input"]["range"] == [0, 255]
        assert description["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
        assert description["output"]["dtype"] == "uint8"
        assert description["output"]["quantization"] == {"scale": 1 / 256, "zero_point": 0}
    else:
        assert description["input"]["dtype"] == "float32"


def test_int8_takes_a_list_of_paths(
    fitted: TransferClassifier, colours: Path, tmp_path: Path
) -> None:
    paths = image_paths(colours)[::3]
    folder = export_model(
        fitted, tmp_path / "int8", format="tflite", quantization="int8", representative_data=paths
    )
    assert (folder / "model.tflite").stat().st_size > 0


def test_the_scaling_inside_tflite_models_matches_the_preprocessor() -> None:
    from hubtransfer._export import _pixel_scaling

    contract = hubtransfer.PreprocessingContract(
        input_size=(4, 4), value_range=(-1.0, 1.0), mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7)
    )
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    scale, offset = _pixel_scaling(contract)
    inside = pixels.astype(np.float32) * scale + offset
    np.testing.assert_allclose(inside, hubtransfer.Preprocessor(contract).batch(pixels), atol=1e-5)


# --- The sidecar, labels and calibration ------------------------------------------------------


def test_sidecar_and_labels_describe_the_export(fitted: TransferClassifier, exports: Path) -> None:
    folder = export_model(fitted, exports / "described", format="tflite")
    assert (folder / "labels.txt").read_text("utf8") == "blue\ngreen\nred\n"
    description = sidecar(folder)
    assert description["format"] == "hubtransfer.export"
    assert description["format_version"] == 1
    assert description["hubtransfer_version"] == hubtransfer.__version__
    assert description["export_format"] == "tflite"
    assert description["classes"] == CLASSES
    assert description["labels_file"] == "labels.txt"
    assert description["preprocessing"] == fitted.backbone_.spec.preprocessing.to_json()
    assert description["backbone"] == {
        "name": "tiny_fv",
        "handle": fitted.backbone_.spec.handle,
        "content_hash": fitted.backbone_.content_hash,
        "licence": "Apache-2.0",
    }
    assert description["output"]["name"] == "probabilities"
    assert "labels.txt" in description["output"]["description"]
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(["labels.txt", "model.tflite", EXPORT_METADATA])
    for name, digest in description["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert set(description["files"]) == {"labels.txt", "model.tflite"}


def test_the_temperature_is_baked_in(
    fitted: TransferClassifier,
    test_images: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import tensorflow as tf

    features = fitted.backbone_.predict(fitted.preprocessor_.batch(test_images))
    plain = fitted.trainer_.predict_proba(features)
    monkeypatch.setattr(fitted, "temperature_", 2.5, raising=False)
    folder = export_model(fitted, tmp_path / "calibrated")
    loaded = tf.saved_model.load(str(folder))
    exported = loaded(fitted.preprocessor_.batch(test_images)).numpy()
    np.testing.assert_allclose(exported, apply_temperature(plain, 2.5), atol=1e-5)
    assert sidecar(folder)["temperature"] == 2.5
    assert sidecar(folder)["calibrated"] is True
    tflite = export_model(fitted, tmp_path / "calibrated-tflite", format="tflite")
    probabilities = run_tflite(tflite / "model.tflite", pixel_batch(fitted, test_images))
    np.testing.assert_allclose(probabilities, apply_temperature(plain, 2.5), atol=1e-4)
    # The classifier's own head is untouched, and calibrated=False exports it as it is.
    np.testing.assert_allclose(fitted.trainer_.predict_proba(features), plain)
    uncalibrated = export_model(fitted, tmp_path / "plain", calibrated=False)
    again = tf.saved_model.load(str(uncalibrated))(fitted.preprocessor_.batch(test_images))
    np.testing.assert_allclose(again.numpy(), plain, atol=1e-5)
    assert sidecar(uncalibrated)["temperature"] is None


# --- Errors and atomicity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"format": "onnx"}, "'format'.*'onnx'"),
        ({"format": "tflite", "quantization": "int4"}, "'quantization'.*'int4'"),
        ({"quantization": "float16"}, "format='tflite' only"),
        ({"format": "tflite", "quantization": "int8"}, "needs representative_data"),
        ({"format": "tflite", "representative_data": "x"}, "quantization='int8' only"),
        ({"calibrated": "yes"}, "'calibrated'.*'yes'"),
    ],
)
def test_bad_options_are_named(
    fitted: TransferClassifier, tmp_path: Path, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        export_model(fitted, tmp_path / "out", **options)
    assert not list(tmp_path.iterdir())


def test_unfitted_models_and_empty_representative_data_are_refused(
    fitted: TransferClassifier, tmp_path: Path
) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        export_model(TransferClassifier(), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="No images in the folder"):
        export_model(
            fitted,
            tmp_path / "out",
            format="tflite",
            quantization="int8",
            representative_data=tmp_path / "empty",
        )
    with pytest.raises(DatasetError, match="does not exist"):
        export_model(
            fitted,
            tmp_path / "out",
            format="tflite",
            quantization="int8",
            representative_data=tmp_path / "missing",
        )
    assert not (tmp_path / "out").exists()


def test_only_an_earlier_export_is_replaced(fitted: TransferClassifier, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(InvalidParameterError, match="exists and is not a folder"):
        export_model(fitted, tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidParameterError, match="it is not a hubtransfer export"):
        export_model(fitted, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    target = export_model(fitted, tmp_path / "export", format="tflite")
    export_model(fitted, target, format="saved_model")
    assert not (target / "model.tflite").exists()
    assert sidecar(target)["export_format"] == "saved_model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "file", "mine"]


def test_a_failed_export_leaves_the_earlier_one(
    fitted: TransferClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hubtransfer._export as export_module

    target = export_model(fitted, tmp_path / "export", format="tflite")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("converter exploded")

    monkeypatch.setattr(export_module, "_convert_tflite", broken)
    with pytest.raises(ExportError, match=r"could not convert it to TensorFlow Lite.*exploded"):
        export_model(fitted, target, format="tflite", quantization="float16")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


# --- The real backbone (slow) -----------------------------------------------------------------


@pytest.mark.slow
def test_fashion_mnist_sample_exports_to_tflite(tmp_path: Path) -> None:
    import time

    import tensorflow as tf

    model = TransferClassifier(epochs=10, verbose=0).fit(EXAMPLES / "fashion-mnist-sample")
    test_folder = EXAMPLES / "fashion-mnist-sample-test"
    test_paths = sorted(test_folder.rglob("*.png"))
    truth = np.asarray([model.classes_.tolist().index(p.parent.name) for p in test_paths])
    reference = model.predict_proba(test_paths)
    saved = export_model(model, tmp_path / "saved_model")
    exported = tf.saved_model.load(str(saved))(model.preprocessor_.batch(test_paths)).numpy()
    np.testing.assert_allclose(exported, reference, atol=1e-5)
    pixels = pixel_batch(model, test_paths)
    lines = [f"{'keras':>12}: accuracy {(reference.argmax(1) == truth).mean():.1%}"]
    for quantization in ("float32", "float16", "dynamic_int8", "int8"):
        started = time.monotonic()
        folder = export_model(
            model,
            tmp_path / quantization,
            format="tflite",
            quantization=quantization,  # type: ignore[arg-type]
            representative_data=(
                EXAMPLES / "fashion-mnist-sample" if quantization == "int8" else None
            ),
        )
        seconds = time.monotonic() - started
        probabilities = run_tflite(folder / "model.tflite", pixels)
        agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
        size = (folder / "model.tflite").stat().st_size
        lines.append(
            f"{quantization:>12}: {size / 1e6:5.2f} MB, converted in {seconds:4.1f} s, top-1 "
            f"agreement {agreement:6.1%}, accuracy {(probabilities.argmax(1) == truth).mean():.1%}"
            f", max |diff| {np.abs(probabilities - reference).max():.3f}"
        )
        if quantization in ("float32", "float16"):
            assert agreement >= 0.99, lines[-1]
        else:
            assert agreement >= 0.8, lines[-1]
    print("\nFashion-MNIST sample, EfficientNet-Lite0 → TFLite:\n" + "\n".join(lines))
