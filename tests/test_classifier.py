"""TransferClassifier: fit, predict, evaluate, save and load, on folders it makes itself.

The fast tests train on 32x32 images whose class is their colour, with the
tiny feature-vector backbone from ``hubtransfer.testing``. One slow test trains
the real embedded EfficientNet-Lite0 on the Fashion-MNIST sample.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import (
    DatasetError,
    InvalidParameterError,
    ModelFormatError,
    NotFittedError,
    TransferClassifier,
)
from hubtransfer.testing import tiny_spec

EXAMPLES = Path(__file__).parent.parent / "examples" / "data"
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}
CLASSES = sorted(COLOURS)
# Settings under which the tiny backbone's small features separate the colours.
FAST = {"epochs": 10, "learning_rate": 0.3, "batch_size": 8, "verbose": 0}


def write_colour_folder(root: Path, *, per_class: int = 12, classes: Any = COLOURS) -> Path:
    """One sub-folder per colour of noisy 32x32 images, alternately PNG and JPEG."""
    rng = np.random.default_rng(0)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            noise = rng.normal(0.0, 25.0, (32, 32, 3))
            pixels = np.clip(np.asarray(COLOURS[name]) + noise, 0, 255).astype(np.uint8)
            suffix = "png" if index % 2 else "jpg"
            Image.fromarray(pixels).save(folder / f"{index:02d}.{suffix}")
    return root


def load_pixels(paths: Any) -> np.ndarray:
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def spec(tiny_models: dict[str, Path]) -> hubtransfer.BackboneSpec:
    return tiny_spec(tiny_models["fv"])


@pytest.fixture(scope="module")
def fitted(colours: Path, spec: hubtransfer.BackboneSpec) -> TransferClassifier:
    return TransferClassifier(backbone=spec, **FAST).fit(colours)


@pytest.fixture(scope="module")
def saved(fitted: TransferClassifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("saved") / "model")


# --- Fitting and predicting ----------------------------------------------------------------


def test_fit_learns_the_colours(fitted: TransferClassifier, colours: Path) -> None:
    assert fitted.classes_.tolist() == CLASSES
    assert fitted.label_map_.classes == tuple(CLASSES)
    assert fitted.n_features_in_ == 8
    assert fitted.score(colours) >= 0.9
    assert fitted.validation_report_ is not None
    assert fitted.validation_report_.n_samples == 6
    assert set(fitted.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_predict_returns_class_names(fitted: TransferClassifier, colours: Path) -> None:
    paths = sorted((colours / "red").iterdir())
    predicted = fitted.predict(paths)
    assert predicted.shape == (12,)
    assert predicted.dtype.kind == "U"
    assert (predicted == "red").mean() >= 0.9
    assert fitted.predict(str(colours / "blue" / "00.jpg")).tolist() == ["blue"]


def test_probability_columns_follow_classes(fitted: TransferClassifier, colours: Path) -> None:
    for index, name in enumerate(fitted.classes_):
        probabilities = fitted.predict_proba(colours / name)
        assert probabilities.shape == (12, 3)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert int(probabilities.mean(axis=0).argmax()) == index


def test_score_is_the_accuracy_of_evaluate(fitted: TransferClassifier, colours: Path) -> None:
    report = fitted.evaluate(colours)
    assert report.classes == tuple(CLASSES)
    assert report.n_samples == 36
    assert report.confusion_matrix.sum() == 36
    assert fitted.score(colours) == report.accuracy
    assert report.top_k_accuracy[1] == report.accuracy
    # A split evaluates its validation part: the images held out at fit.
    held_out = fitted.evaluate(fitted.split_)
    assert held_out.n_samples == 6
    assert held_out.accuracy == pytest.approx(fitted.validation_report_.accuracy)


def test_to_keras_matches_predict_proba(fitted: TransferClassifier, colours: Path) -> None:
    paths = sorted(colours.rglob("*.*"))
    pixels = fitted.preprocessor_.batch(paths)
    model = fitted.to_keras()
    assert model is fitted.to_keras()
    np.testing.assert_allclose(
        model.predict(pixels, verbose=0), fitted.predict_proba(paths), atol=1e-5
    )


def test_the_split_manifest_can_be_saved(fitted: TransferClassifier, tmp_path: Path) -> None:
    split = fitted.split_
    assert split is not None
    assert (len(split.train), len(split.validation), len(split.test)) == (30, 6, 0)
    assert (split.seed, split.validation_fraction) == (0, 0.2)
    manifest = split.save(tmp_path / "split.json")
    assert hubtransfer.DataSplit.load(manifest) == split


def test_cached_and_uncached_fits_agree_and_split_alike(
    fitted: TransferClassifier, colours: Path, spec: hubtransfer.BackboneSpec, isolated_cache: Path
) -> None:
    # Fewer epochs than `fitted`: only agreement matters here.
    settings = {**FAST, "epochs": 2}
    uncached = TransferClassifier(backbone=spec, cache_features=False, **settings).fit(colours)
    assert not (isolated_cache / "features").exists()
    cached = TransferClassifier(backbone=spec, **settings).fit(colours)
    assert (isolated_cache / "features").is_dir()
    [store] = (isolated_cache / "features").iterdir()
    assert len(hubtransfer.FeatureStore(store, feature_dim=8)) == 36
    np.testing.assert_allclose(
        cached.predict_proba(colours), uncached.predict_proba(colours), atol=1e-6
    )
    # The same seed splits the folder the same way, every time.
    for model in (cached, uncached):
        assert model.split_ is not None
        assert model.split_.train.paths == fitted.split_.train.paths
        assert model.split_.validation.paths == fitted.split_.validation.paths


def test_fit_on_paths_and_names(
    colours: Path, spec: hubtransfer.BackboneSpec, isolated_cache: Path
) -> None:
    paths = [str(p) for p in sorted(colours.rglob("*.*"))]
    names = [Path(p).parent.name for p in paths]
    model = TransferClassifier(backbone=spec, **FAST)
    assert model.fit(paths, names) is model
    assert model.classes_.tolist() == CLASSES
    assert model.split_ is None
    assert model.score(paths, names) >= 0.9
    assert model.predict(paths[:2]).tolist() == names[:2]


def test_fit_on_an_array_with_int_labels(
    colours: Path, spec: hubtransfer.BackboneSpec, isolated_cache: Path
) -> None:
    collection = hubtransfer.scan_image_folder(colours)
    images = load_pixels(collection.paths)
    labels = np.asarray(collection.labels)
    model = TransferClassifier(backbone=spec, **FAST)
    assert model.fit(images, labels, classes=CLASSES) is model
    assert model.classes_.tolist() == CLASSES
    assert model.score(images, labels) >= 0.9
    assert model.predict(images[:1]).tolist() == [CLASSES[labels[0]]]
    # One image [h, w, 3] is one prediction.
    assert model.predict(images[-1]).tolist() == [CLASSES[labels[-1]]]


def test_fit_on_datasets_of_pairs(
    colours: Path, spec: hubtransfer.BackboneSpec, isolated_cache: Path
) -> None:
    import tensorflow as tf

    collection = hubtransfer.scan_image_folder(colours)
    # Images of different sizes: the dataset is batched after preprocessing.
    sizes = [(32 + 4 * (i % 3), 32 + 2 * (i % 2)) for i in range(len(collection))]
    images = [
        np.asarray(Image.open(path).convert("RGB").resize(size))
        for path, size in zip(collection.paths, sizes, strict=True)
    ]
    labels = list(collection.labels)

    def pairs() -> Iterator[tuple[np.ndarray, int]]:
        yield from zip(images, labels, strict=True)

    unbatched = tf.data.Dataset.from_generator(
        pairs,
        output_signature=(
            tf.TensorSpec([None, None, 3], tf.uint8),
            tf.TensorSpec([], tf.int64),
        ),
    )
    model = TransferClassifier(backbone=spec, **FAST)
    assert model.fit(unbatched, classes=CLASSES) is model
    assert model.classes_.tolist() == CLASSES
    assert model.score(unbatched) >= 0.9
    predicted = model.predict(unbatched.map(lambda image, label: image))
    assert (predicted == np.asarray(CLASSES)[labels]).mean() >= 0.9

    same_size = load_pixels(collection.paths)
    batched = tf.data.Dataset.from_tensor_slices((same_size, labels)).shuffle(36, seed=0).batch(5)
    model = TransferClassifier(backbone=spec, **FAST).fit(batched)
    # Integer labels are the classes, as in scikit-learn.
    assert model.classes_.tolist() == [0, 1, 2]
    assert model.score(same_size, labels) >= 0.9


# --- Parameters ----------------------------------------------------------------------------


def test_get_params_set_params_and_clone(fitted: TransferClassifier) -> None:
    from sklearn.base import clone

    params = fitted.get_params()
    assert params == fitted.get_params(deep=False)
    assert TransferClassifier(**params).get_params() == params
    copy = clone(fitted)
    assert copy.get_params() == params
    with pytest.raises(NotFittedError):
        copy.predict(np.zeros((1, 32, 32, 3), np.uint8))
    assert copy.set_params(epochs=3, dropout=0.5) is copy
    assert (copy.epochs, copy.dropout) == (3, 0.5)
    assert fitted.epochs == FAST["epochs"]


def test_set_params_rejects_unknown_names() -> None:
    with pytest.raises(
        InvalidParameterError,
        match=re.escape("'epoch' is not a parameter of TransferClassifier. Valid parameters: "),
    ) as raised:
        TransferClassifier().set_params(epoch=3)
    assert "epochs" in str(raised.value)


def test_repr_shows_the_changed_parameters() -> None:
    assert repr(TransferClassifier(epochs=3)) == (
        "TransferClassifier(backbone='efficientnet_lite0_embedded_fv', epochs=3)"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("epochs", -3, "a positive int"),
        ("batch_size", 0, "a positive int"),
        ("learning_rate", 0, "a float in (0, 10)"),
        ("dropout", 1, "a float in [0, 1)"),
        ("hidden_units", 0, "a positive int"),
        ("class_weight", "auto", "'balanced', a mapping of class index to weight, or None"),
        ("early_stopping", 1, "a bool"),
        ("seed", -1, "an int >= 0"),
        ("verbose", "loud", "an int >= 0"),
        ("validation_split", 1.5, "a float in [0, 1)"),
        ("validation_split", -0.1, "a float in [0, 1)"),
        ("validation_split", True, "a float in [0, 1)"),
        ("cache_features", "yes", "a bool"),
        ("extraction_batch_size", 0, "a positive int"),
        ("backbone", 42, "a name, handle or BackboneSpec"),
    ],
)
def test_parameters_are_validated_at_fit(
    name: str, value: object, expected: str, tmp_path: Path
) -> None:
    model = TransferClassifier(**{name: value})  # type: ignore[arg-type]
    assert getattr(model, name) is value
    message = (
        f"The {name!r} parameter of TransferClassifier must be {expected}. Got {value!r} instead."
    )
    # Parameters are checked before the data is looked at.
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        model.fit(tmp_path / "does-not-exist")


# --- Bad data and unfitted models ----------------------------------------------------------


def test_a_one_class_folder_is_refused(saved: Path, colours: Path, tmp_path: Path) -> None:
    one = write_colour_folder(tmp_path / "one", per_class=4, classes=["red"])
    model = TransferClassifier.load(saved)
    message = "Training needs at least 2 classes; the data has 1 (['red'])."
    with pytest.raises(DatasetError, match=re.escape(message)):
        model.fit(one)
    # The failed refit leaves no half-fitted model behind.
    with pytest.raises(NotFittedError):
        model.predict(colours / "red")


def test_an_empty_folder_is_refused(tmp_path: Path, spec: hubtransfer.BackboneSpec) -> None:
    (tmp_path / "empty").mkdir()
    model = TransferClassifier(backbone=spec, **FAST)
    with pytest.raises(DatasetError, match="holds no class sub-folders"):
        model.fit(tmp_path / "empty")
    (tmp_path / "empty" / "cat").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        model.fit(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        model.fit(tmp_path / "missing")


def test_labels_must_come_with_the_images(tmp_path: Path, spec: hubtransfer.BackboneSpec) -> None:
    model = TransferClassifier(backbone=spec, **FAST)
    with pytest.raises(InvalidParameterError, match="without labels: pass y"):
        model.fit([tmp_path / "a.png"])
    with pytest.raises(InvalidParameterError, match="do not pass y with a folder"):
        model.fit(tmp_path, ["cat"])


def test_not_fitted(tmp_path: Path) -> None:
    model = TransferClassifier()
    message = (
        "This TransferClassifier is not fitted yet. Call fit(...) or "
        "TransferClassifier.load(path) first."
    )
    calls = [
        lambda: model.predict(["a.png"]),
        lambda: model.predict_proba(["a.png"]),
        lambda: model.evaluate(tmp_path),
        lambda: model.score(tmp_path),
        lambda: model.to_keras(),
        lambda: model.save(tmp_path / "model"),
    ]
    for call in calls:
        with pytest.raises(NotFittedError, match=re.escape(message)):
            call()
        with pytest.raises(AttributeError):
            call()
    assert not hasattr(model, "classes_")
    assert not (tmp_path / "model").exists()


# --- Saving and loading --------------------------------------------------------------------


def test_save_load_round_trip(saved: Path, fitted: TransferClassifier, colours: Path) -> None:
    loaded = TransferClassifier.load(saved)
    assert loaded.classes_.tolist() == CLASSES
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history_ == fitted.history_
    np.testing.assert_array_equal(loaded.predict_proba(colours), fitted.predict_proba(colours))
    assert loaded.predict(colours / "green").tolist() == fitted.predict(colours / "green").tolist()


def test_the_saved_folder_holds_no_pickle(saved: Path, fitted: TransferClassifier) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [
        "backbone",
        "head.npz",
        "hubtransfer.json",
        "split.json",
    ]
    metadata = json.loads((saved / "hubtransfer.json").read_text(encoding="utf8"))
    assert metadata["format"] == "hubtransfer.model"
    assert metadata["format_version"] == 1
    assert metadata["classes"] == CLASSES
    assert metadata["params"]["backbone"] == "tiny_fv"
    with np.load(saved / "head.npz", allow_pickle=False) as head:
        weights = {name: head[name] for name in head.files}
    assert sorted(weights) == metadata["head"]["weights"]
    for stored, trained in zip(
        [weights[f"w{i}"] for i in range(len(weights))],
        fitted.trainer_.head_.get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(stored, trained)
    files = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    assert set(metadata["files"]) == files - {"hubtransfer.json"}
    # The backbone is a plain SavedModel: protocol buffers and a checkpoint.
    assert files == {
        "backbone/fingerprint.pb",
        "backbone/saved_model.pb",
        "backbone/variables/variables.data-00000-of-00001",
        "backbone/variables/variables.index",
        "head.npz",
        "hubtransfer.json",
        "split.json",
    }


def _copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "copy"))


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_metadata(folder: Path, **changes: Any) -> None:
    file = folder / "hubtransfer.json"
    metadata = json.loads(file.read_text(encoding="utf8"))
    metadata.update(changes)
    file.write_text(json.dumps(metadata), encoding="utf8")


def test_load_refuses_a_folder_without_metadata(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    (folder / "hubtransfer.json").unlink()
    message = (
        f"The folder {str(folder)!r} has no hubtransfer.json, so it is not a hubtransfer "
        "model. Pass the folder written by TransferClassifier.save()."
    )
    with pytest.raises(ModelFormatError, match=re.escape(message)):
        TransferClassifier.load(folder)
    with pytest.raises(ModelFormatError, match=re.escape("No saved model folder at")):
        TransferClassifier.load(tmp_path / "nothing-here")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda f: _flip_a_byte(f / "head.npz"), "changed since it was saved: ['head.npz']"),
        (
            lambda f: _flip_a_byte(f / "backbone" / "variables" / "variables.data-00000-of-00001"),
            "changed since it was saved: ['backbone/variables/variables.data-00000-of-00001']",
        ),
        (
            lambda f: (f / "notes.txt").write_text("hi"),
            "not part of the saved model: ['notes.txt']",
        ),
        (lambda f: (f / "head.npz").unlink(), "missing: ['head.npz']"),
    ],
    ids=["head-byte", "backbone-byte", "extra-file", "missing-file"],
)
def test_load_refuses_a_damaged_folder(
    saved: Path, tmp_path: Path, damage: Any, problem: str
) -> None:
    folder = _copy(saved, tmp_path)
    damage(folder)
    message = (
        f"The model folder {str(folder)!r} is damaged or was tampered with; files {problem}. "
        "Save the model again, or restore the folder from a copy."
    )
    with pytest.raises(ModelFormatError, match=re.escape(message)):
        TransferClassifier.load(folder)


def test_load_refuses_a_newer_format(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    _edit_metadata(folder, format_version=2, hubtransfer_version="9.0.0")
    message = (
        f"The model in {str(folder)!r} was saved in format version 2 by hubtransfer 9.0.0; "
        f"this hubtransfer ({hubtransfer.__version__}) reads versions up to 1. "
        "Upgrade hubtransfer to load it."
    )
    with pytest.raises(ModelFormatError, match=re.escape(message)):
        TransferClassifier.load(folder)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"format": "something.else"}, "is not a hubtransfer model description"),
        ({"format_version": "1"}, "has no valid 'format_version'"),
        ({"classes": ["red", "green", "blue"]}, "The label map and the class list in"),
        ({"files": {}}, "'files' must be an object of file checksums"),
    ],
)
def test_load_refuses_altered_metadata(
    saved: Path, tmp_path: Path, changes: dict[str, Any], problem: str
) -> None:
    folder = _copy(saved, tmp_path)
    _edit_metadata(folder, **changes)
    with pytest.raises(ModelFormatError, match=re.escape(problem)):
        TransferClassifier.load(folder)


def test_load_refuses_invalid_json(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    (folder / "hubtransfer.json").write_text("{not json", encoding="utf8")
    with pytest.raises(ModelFormatError, match="is not valid JSON"):
        TransferClassifier.load(folder)


def test_saving_over_a_model_replaces_it_atomically(
    fitted: TransferClassifier, colours: Path, spec: hubtransfer.BackboneSpec, tmp_path: Path
) -> None:
    target = tmp_path / "models" / "colours"
    assert fitted.save(target) == target
    other = TransferClassifier(backbone=spec, **{**FAST, "epochs": 1, "seed": 7}).fit(colours)
    other.save(target)
    assert [p.name for p in target.parent.iterdir()] == ["colours"]
    loaded = TransferClassifier.load(target)
    assert loaded.seed == 7
    np.testing.assert_array_equal(loaded.predict_proba(colours), other.predict_proba(colours))


def test_saving_onto_a_file_is_refused(fitted: TransferClassifier, tmp_path: Path) -> None:
    (tmp_path / "model").write_text("not a folder")
    with pytest.raises(InvalidParameterError, match="it exists and is not a folder"):
        fitted.save(tmp_path / "model")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_save_that_fails_midway_leaves_the_old_model_and_nothing_else(
    fitted: TransferClassifier,
    colours: Path,
    spec: hubtransfer.BackboneSpec,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "models" / "colours"
    fitted.save(target)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    other = TransferClassifier(backbone=spec, **{**FAST, "epochs": 1, "seed": 7}).fit(colours)
    write = TransferClassifier._write

    def write_then_fail(self: TransferClassifier, folder: Path) -> None:
        write(self, folder)  # a complete folder, so the failure is as late as it can be
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TransferClassifier, "_write", write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        other.save(target)
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in target.parent.iterdir()] == ["colours"]
    assert TransferClassifier.load(target).seed == fitted.seed


def test_a_refit_that_fails_leaves_no_half_fitted_model(
    colours: Path, spec: hubtransfer.BackboneSpec, tmp_path: Path
) -> None:
    model = TransferClassifier(backbone=spec, **FAST).fit(colours)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError):
        model.fit(tmp_path / "empty")
    # Not the old head beside a new backbone: nothing fitted at all.
    with pytest.raises(NotFittedError):
        model.predict(colours)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


# --- The real backbone (slow) --------------------------------------------------------------


@pytest.mark.slow
def test_fashion_mnist_sample_with_the_embedded_backbone(tmp_path: Path) -> None:
    # In the session cache, shared with the other slow tests: converted once only.
    model = TransferClassifier(epochs=10, verbose=0).fit(EXAMPLES / "fashion-mnist-sample")
    assert len(model.classes_) == 10
    test_folder = EXAMPLES / "fashion-mnist-sample-test"
    probabilities = model.predict_proba(test_folder)
    accuracy = model.score(test_folder)
    assert accuracy > 0.6
    loaded = TransferClassifier.load(model.save(tmp_path / "fashion"))
    np.testing.assert_array_equal(loaded.predict_proba(test_folder), probabilities)


# --- Calibration and export ------------------------------------------------------------------


def test_fit_calibrates_on_the_validation_split(fitted: TransferClassifier, colours: Path) -> None:
    report = fitted.calibration_report_
    assert report is not None
    assert report.n_samples == 6
    assert fitted.temperature_ == report.temperature
    raw = fitted.predict_proba(colours / "red", calibrated=False)
    calibrated = fitted.predict_proba(colours / "red")
    np.testing.assert_allclose(
        calibrated, hubtransfer.apply_temperature(raw, fitted.temperature_), atol=1e-6
    )
    np.testing.assert_array_equal(calibrated.argmax(1), raw.argmax(1))


def test_predict_with_min_confidence(fitted: TransferClassifier, colours: Path) -> None:
    assert set(fitted.predict(colours / "red", min_confidence=1.0).tolist()) == {"unknown"}
    answers = fitted.predict(colours / "red", min_confidence=0.0, unknown_label="?")
    np.testing.assert_array_equal(answers, fitted.predict(colours / "red"))
    with pytest.raises(InvalidParameterError, match=r"'min_confidence'.*Got 2"):
        fitted.predict(colours / "red", min_confidence=2)


def test_calibration_survives_save_and_load(saved: Path, fitted: TransferClassifier) -> None:
    loaded = TransferClassifier.load(saved)
    assert loaded.temperature_ == fitted.temperature_
    assert loaded.calibration_report_ == fitted.calibration_report_


def test_without_validation_there_is_no_temperature(
    colours: Path, spec: hubtransfer.BackboneSpec
) -> None:
    model = TransferClassifier(backbone=spec, validation_split=0.0, **FAST).fit(colours)
    assert model.temperature_ is None and model.calibration_report_ is None


def test_export_is_export_model(fitted: TransferClassifier, tmp_path: Path) -> None:
    folder = fitted.export(tmp_path / "tflite", format="tflite")
    assert (folder / "model.tflite").is_file()
