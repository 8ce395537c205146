"""Feature runtimes: TFLite conversion, its check against TensorFlow, caching and fallback.

Everything runs for real on tiny SavedModels (no mocks of TensorFlow). Conversions
and checks are observed through the module's log records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

import hubtransfer
from hubtransfer._runtime import (
    TFLITE_ATOL,
    TFLITE_RTOL,
    FeatureRuntime,
    OpenVINORuntime,
    OpenVINOUnavailableError,
    RuntimeChoice,
    TensorFlowRuntime,
    TFLiteRuntime,
    TFLiteUnavailableError,
    compare_features,
    openvino_available,
    select_runtime,
    tflite_model_for,
    verification_batch,
)
from hubtransfer.testing import tiny_spec

LOGGER = "hubtransfer._runtime"
FASTEST = "openvino" if openvino_available() else "tflite"
"""What runtime="auto" picks for a backbone that converts exactly."""
NEEDS_OPENVINO = pytest.mark.skipif(
    not openvino_available(), reason="needs the optional openvino extra"
)


def _images(count: int, seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, size, size, 3)).astype(np.float32)


def _messages(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(start)]


@pytest.fixture
def tiny(tiny_models: dict[str, Path]) -> hubtransfer.Backbone:
    """A fresh backbone object (runtimes are remembered per object)."""
    return hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))


@pytest.fixture(scope="session")
def unconvertible(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SavedModel whose op (BesselI0e) has no TFLite builtin kernel."""
    import tensorflow as tf

    class Model(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def __call__(self, images: tf.Tensor) -> tf.Tensor:
            return tf.math.bessel_i0e(tf.reduce_mean(images, axis=[1, 2]))

    folder = tmp_path_factory.mktemp("unconvertible") / "model"
    tf.saved_model.save(Model(), str(folder))
    return folder


def _unconvertible_backbone(folder: Path) -> hubtransfer.Backbone:
    return hubtransfer.load_backbone(tiny_spec(folder, name="bessel", output_dim=3))


# --- Conversion ---------------------------------------------------------------------------


def test_conversion_writes_one_tflite_file_in_the_cache(
    tiny: hubtransfer.Backbone, isolated_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    path = tflite_model_for(tiny)
    assert path == isolated_cache / "tflite" / f"{tiny.content_hash}-v1.tflite"
    assert path.read_bytes()[4:8] == b"TFL3"
    assert len(_messages(caplog, "Converted backbone tiny_fv to TFLite")) == 1
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_tflite_features_match_tensorflow(tiny: hubtransfer.Backbone, isolated_cache: Path) -> None:
    lite = TFLiteRuntime(tflite_model_for(tiny))
    reference = TensorFlowRuntime(tiny)
    batch = np.concatenate([verification_batch(tiny), _images(12)])
    features = lite(batch)
    expected = reference(batch)
    assert features.shape == (16, 8)
    assert features.dtype == np.float32
    passed, max_difference = compare_features(features, expected)
    assert passed
    assert max_difference < 1e-5
    np.testing.assert_allclose(features, tiny.predict(batch), atol=TFLITE_ATOL, rtol=TFLITE_RTOL)


@pytest.mark.parametrize("threads", [2, 3])
def test_big_batches_run_side_by_side_with_identical_results(
    tiny: hubtransfer.Backbone, isolated_cache: Path, threads: int
) -> None:
    lite = TFLiteRuntime(tflite_model_for(tiny), num_threads=threads)
    images = _images(2 * threads + 5, seed=5)
    one_by_one = np.concatenate([lite(images[i : i + 1]) for i in range(len(images))])
    assert lite._pool is None  # single images: the one interpreter with every thread
    whole = lite(images)
    # One single-threaded interpreter per thread, each on a slice of the batch.
    assert lite._pool is not None and len(lite._side_by_side) == threads
    np.testing.assert_array_equal(whole, one_by_one)


def test_batch_sizes_give_identical_results(
    tiny: hubtransfer.Backbone, isolated_cache: Path
) -> None:
    lite = TFLiteRuntime(tflite_model_for(tiny))
    images = _images(64, seed=3)
    whole = lite(images)
    one_by_one = np.concatenate([lite(images[i : i + 1]) for i in range(64)])
    by_seven = np.concatenate([lite(images[i : i + 7]) for i in range(0, 64, 7)])
    np.testing.assert_array_equal(one_by_one, whole)
    np.testing.assert_array_equal(by_seven, whole)
    assert lite(images[:0]).shape == (0, 8)
    np.testing.assert_array_equal(lite(images[::-1])[::-1], whole)  # a strided view
    np.testing.assert_array_equal(lite(images.astype(np.float64)), whole)
    tensorflow = TensorFlowRuntime(tiny)
    np.testing.assert_allclose(
        np.concatenate([tensorflow(images[i : i + 7]) for i in range(0, 64, 7)]),
        tensorflow(images),
        rtol=1e-6,
        atol=1e-7,
    )


def test_the_cached_model_and_check_are_reused(
    tiny_models: dict[str, Path], isolated_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    first = select_runtime(
        hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])), runtime="tflite"
    )
    assert first.name == "tflite"
    assert isinstance(first, TFLiteRuntime)
    model = first.model_path
    stat = model.stat()
    record = json.loads(model.with_suffix(".json").read_text())
    assert record["tflite_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    check = record["check"]
    assert check["passed"] is True
    assert check["max_abs_difference"] < 1e-5
    assert (check["atol"], check["rtol"]) == (TFLITE_ATOL, TFLITE_RTOL)
    assert len(_messages(caplog, "Converting backbone")) == 1
    assert len(_messages(caplog, "Checked TFLite")) == 1

    # A new backbone object (as in a new process): no conversion, no second check.
    again = select_runtime(
        hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])), runtime="tflite"
    )
    assert isinstance(again, TFLiteRuntime)
    assert again is not first
    assert again.model_path == model
    assert (model.stat().st_mtime_ns, model.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert len(_messages(caplog, "Converting backbone")) == 1
    assert len(_messages(caplog, "Checked TFLite")) == 1


def test_the_runtime_is_remembered_per_backbone(
    tiny: hubtransfer.Backbone, isolated_cache: Path
) -> None:
    assert select_runtime(tiny) is select_runtime(tiny)
    assert select_runtime(tiny, runtime="tensorflow") is select_runtime(tiny, runtime="tensorflow")


def test_tensorflow_runtime_skips_the_conversion(
    tiny: hubtransfer.Backbone, isolated_cache: Path
) -> None:
    runtime = select_runtime(tiny, runtime="tensorflow")
    assert runtime.name == "tensorflow"
    assert isinstance(runtime, TensorFlowRuntime)
    assert isinstance(runtime, FeatureRuntime)
    assert not (isolated_cache / "tflite").exists()
    images = _images(5)
    np.testing.assert_allclose(runtime(images), tiny.predict(images), rtol=1e-6, atol=1e-7)


def test_auto_without_conversion_uses_a_model_only_once_converted(
    tiny_models: dict[str, Path], isolated_cache: Path
) -> None:
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    assert select_runtime(backbone, convert=False).name == "tensorflow"
    assert not (isolated_cache / "tflite").exists()
    # The first answer is not remembered for "auto": a conversion still happens when asked.
    assert select_runtime(backbone).name == FASTEST
    fresh = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    assert select_runtime(fresh, convert=False).name == FASTEST


def test_concurrent_conversions_convert_once(
    tiny_models: dict[str, Path], isolated_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    backbones = [hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[Path] = []
    errors: list[BaseException] = []

    def convert(backbone: hubtransfer.Backbone) -> None:
        try:
            barrier.wait()
            results.append(tflite_model_for(backbone))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=convert, args=(b,)) for b in backbones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 2
    assert results[0] == results[1]
    assert len(_messages(caplog, "Converting backbone")) == 1
    assert sorted(p.name for p in results[0].parent.iterdir()) == [
        f".{results[0].name}.lock",
        results[0].with_suffix(".json").name,
        results[0].name,
    ]


def test_one_runtime_is_safe_to_share_between_threads(
    tiny: hubtransfer.Backbone, isolated_cache: Path
) -> None:
    lite = TFLiteRuntime(tflite_model_for(tiny))
    batches = [_images(9, seed=seed) for seed in range(4)]
    expected = [lite(batch) for batch in batches]
    results: dict[int, np.ndarray] = {}

    def run(index: int) -> None:
        for _ in range(5):
            results[index] = lite(batches[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, features in enumerate(expected):
        np.testing.assert_array_equal(results[index], features)


# --- OpenVINO -----------------------------------------------------------------------------


@NEEDS_OPENVINO
def test_auto_prefers_openvino_when_it_matches_tensorflow(
    tiny_models: dict[str, Path], isolated_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    runtime = select_runtime(backbone)
    assert isinstance(runtime, OpenVINORuntime)
    assert runtime.name == "openvino"
    assert isinstance(runtime, FeatureRuntime)
    # It runs the cached TFLite file: one conversion serves both runtimes.
    assert runtime.model_path == tflite_model_for(backbone)
    images = np.concatenate([verification_batch(backbone), _images(9, seed=4)])
    passed, max_difference = compare_features(runtime(images), TensorFlowRuntime(backbone)(images))
    assert passed, max_difference
    record = json.loads(runtime.model_path.with_suffix(".json").read_text())
    check = record["openvino_check"]
    assert check["passed"] is True
    assert check["openvino"] and (check["atol"], check["rtol"]) == (TFLITE_ATOL, TFLITE_RTOL)
    assert len(_messages(caplog, "Checked OpenVINO")) == 1
    # A new backbone object (as in a new process): the recorded check is reused.
    again = select_runtime(hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])))
    assert isinstance(again, OpenVINORuntime) and again is not runtime
    assert len(_messages(caplog, "Checked OpenVINO")) == 1
    assert runtime(images[:0]).shape == (0, 8)


@NEEDS_OPENVINO
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_openvino_batches_and_single_images_give_identical_results(
    tiny: hubtransfer.Backbone, isolated_cache: Path, threads: int
) -> None:
    runtime = OpenVINORuntime(tflite_model_for(tiny), num_threads=threads)
    images = _images(2 * threads + 5, seed=5)
    one_by_one = np.concatenate([runtime(images[i : i + 1]) for i in range(len(images))])
    assert runtime._queue is None  # single images: one request with every thread
    whole = runtime(images)
    assert (runtime._queue is not None) == (threads > 1)  # big batches: streams side by side
    np.testing.assert_array_equal(whole, one_by_one)
    np.testing.assert_array_equal(runtime(images[:3]), one_by_one[:3])


@NEEDS_OPENVINO
def test_auto_falls_back_to_tflite_when_openvino_was_found_inexact(
    tiny_models: dict[str, Path], isolated_cache: Path
) -> None:
    import openvino
    import tensorflow as tf

    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    model = tflite_model_for(backbone)
    record_path = model.with_suffix(".json")
    # What a failed check leaves in the record, on a CPU where OpenVINO's kernels differ.
    record = json.loads(record_path.read_text())
    record["openvino_check"] = {
        "atol": TFLITE_ATOL,
        "rtol": TFLITE_RTOL,
        "tensorflow": tf.__version__,
        "openvino": openvino.__version__,
        "passed": False,
        "max_abs_difference": 0.5,
        "images": 4,
    }
    record_path.write_text(json.dumps(record))
    assert isinstance(select_runtime(backbone), TFLiteRuntime)
    with pytest.raises(OpenVINOUnavailableError, match=r"differ from TensorFlow's by up to 0\.5"):
        select_runtime(hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])), runtime="openvino")


def test_a_missing_openvino_is_a_clear_error_and_auto_uses_tflite(
    tiny: hubtransfer.Backbone, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    assert not openvino_available()
    with pytest.raises(OpenVINOUnavailableError, match=r"pip install 'hubtransfer\[openvino\]'"):
        select_runtime(tiny, runtime="openvino")
    assert not (isolated_cache / "tflite").exists(), "nothing is converted for it"
    assert isinstance(select_runtime(tiny), TFLiteRuntime)


@NEEDS_OPENVINO
def test_openvino_names_a_file_it_cannot_load(tmp_path: Path) -> None:
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(OpenVINOUnavailableError, match=r"model\.tflite"):
        OpenVINORuntime(bogus)
    with pytest.raises(hubtransfer.InvalidParameterError, match="num_threads"):
        OpenVINORuntime(bogus, num_threads=0)


# --- Fallback -----------------------------------------------------------------------------


def test_an_unconvertible_model_falls_back_to_tensorflow_with_a_warning(
    unconvertible: Path, isolated_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    backbone = _unconvertible_backbone(unconvertible)
    with pytest.warns(UserWarning, match="cannot be converted to TensorFlow Lite") as record:
        runtime = select_runtime(backbone)
    message = str(record[0].message)
    assert "bessel" in message
    assert str(unconvertible) in message
    assert "runtime='tensorflow'" in message
    assert runtime.name == "tensorflow"
    images = _images(3)
    np.testing.assert_allclose(runtime(images), backbone.predict(images), rtol=1e-6)
    # Nothing is left behind, and the failure is not retried in this process.
    assert [
        p.name for p in (isolated_cache / "tflite").iterdir() if not p.name.endswith(".lock")
    ] == []
    with pytest.raises(TFLiteUnavailableError, match="cannot be converted"):
        select_runtime(_unconvertible_backbone(unconvertible), runtime="tflite")
    with pytest.warns(UserWarning, match="cannot be converted"):
        assert select_runtime(_unconvertible_backbone(unconvertible)).name == "tensorflow"
    assert len(_messages(caplog, "Converting backbone")) == 1


def test_tflite_runtime_raises_when_the_model_cannot_be_converted(
    unconvertible: Path, isolated_cache: Path
) -> None:
    backbone = _unconvertible_backbone(unconvertible)
    with pytest.raises(TFLiteUnavailableError) as caught:
        select_runtime(backbone, runtime="tflite")
    assert isinstance(caught.value, hubtransfer.HubTransferError)
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize("damage", ["truncated", "not-tflite", "altered-weights"])
@pytest.mark.parametrize("kind", ["tflite", pytest.param("openvino", marks=NEEDS_OPENVINO)])
def test_a_damaged_cached_model_is_detected_and_rebuilt(
    tiny_models: dict[str, Path],
    isolated_cache: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
    kind: RuntimeChoice,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    expected = OpenVINORuntime if kind == "openvino" else TFLiteRuntime
    runtime = select_runtime(hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])), runtime=kind)
    assert isinstance(runtime, expected)
    path = runtime.model_path
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "not-tflite":
        path.write_bytes(b"<html>a proxy's error page</html>")
    else:
        # The tiny model's float weights sit in the file's last buffers.
        data = bytearray(good)
        for offset in range(len(data) - 600, len(data) - 80, 4):
            data[offset + 3] ^= 0x40
        path.write_bytes(bytes(data))
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    rebuilt = select_runtime(backbone, runtime=kind)
    assert isinstance(rebuilt, expected)
    assert rebuilt.model_path == path
    assert len(_messages(caplog, "Converting backbone")) == 2
    assert path.read_bytes()[4:8] == b"TFL3"
    images = _images(6)
    assert compare_features(rebuilt(images), TensorFlowRuntime(backbone)(images))[0]


def test_a_trainable_backbone_runs_on_tensorflow(
    tiny_models: dict[str, Path], isolated_cache: Path
) -> None:
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]), trainable=True)
    with pytest.warns(UserWarning, match="is trainable"):
        assert select_runtime(backbone).name == "tensorflow"
    with pytest.raises(TFLiteUnavailableError, match="trainable=False"):
        select_runtime(backbone, runtime="tflite")
    if openvino_available():
        with pytest.raises(OpenVINOUnavailableError, match="trainable=False"):
            select_runtime(backbone, runtime="openvino")
    assert not (isolated_cache / "tflite").exists()


# --- Parameters ---------------------------------------------------------------------------


def test_unknown_runtime_names_are_rejected(tiny: hubtransfer.Backbone) -> None:
    with pytest.raises(
        hubtransfer.InvalidParameterError, match="'auto', 'openvino', 'tflite', 'tensorflow'"
    ):
        select_runtime(tiny, runtime="onnx")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "runtime_kind", ["tflite", "tensorflow", pytest.param("openvino", marks=NEEDS_OPENVINO)]
)
def test_runtimes_reject_batches_of_the_wrong_shape(
    tiny: hubtransfer.Backbone, isolated_cache: Path, runtime_kind: str
) -> None:
    runtime = select_runtime(tiny, runtime=runtime_kind)  # type: ignore[arg-type]
    with pytest.raises(hubtransfer.InvalidParameterError, match=r"\[n, 32, 32, 3\]"):
        runtime(np.zeros((2, 64, 64, 3), np.float32))


def test_a_file_that_is_not_a_model_is_named_in_the_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(TFLiteUnavailableError, match=str(bogus)):
        TFLiteRuntime(bogus)
    with pytest.raises(hubtransfer.InvalidParameterError, match="num_threads"):
        TFLiteRuntime(bogus, num_threads=0)


def test_the_verification_batch_follows_the_contract(tiny: hubtransfer.Backbone) -> None:
    import dataclasses

    batch = verification_batch(tiny)
    assert batch.shape == (4, 32, 32, 3)
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0
    np.testing.assert_array_equal(batch, verification_batch(tiny))
    spec = dataclasses.replace(tiny.spec, value_range=(-1.0, 1.0))
    wide = verification_batch(hubtransfer.load_backbone(spec))
    assert -1.0 <= wide.min() < 0.0 < wide.max() <= 1.0


def test_compare_features_uses_absolute_and_relative_tolerance() -> None:
    reference = np.array([[0.0, 100.0]], np.float32)
    close = np.array([[0.9 * TFLITE_ATOL, 100.0 + 0.09]], np.float32)
    assert compare_features(close, reference) == (True, pytest.approx(0.09, rel=1e-3))
    assert not compare_features(np.array([[1.1 * TFLITE_ATOL, 100.0]], np.float32), reference)[0]
    assert not compare_features(np.array([[0.0, 100.2]], np.float32), reference)[0]
    assert not compare_features(np.array([[np.nan, 100.0]], np.float32), reference)[0]


# --- The embedded backbone (slow) ---------------------------------------------------------


@pytest.mark.slow
def test_embedded_backbone_tflite_matches_tensorflow_on_photos(session_cache: Path) -> None:
    import skimage.data

    from hubtransfer import LabelMap, Preprocessor, load_backbone

    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    for name in ("efficientnet_lite0_embedded_fv", "efficientnet_lite0_embedded_classifier"):
        backbone = load_backbone(name)
        pixels = Preprocessor.from_spec(backbone.spec).batch(photos)
        lite = select_runtime(backbone, runtime="tflite")
        features = lite(pixels)
        expected = TensorFlowRuntime(backbone)(pixels)
        passed, max_difference = compare_features(features, expected)
        assert passed, f"{name}: max |tflite - tf| = {max_difference}"
        assert max_difference < 1e-4
        if backbone.spec.output_kind == "classification":
            np.testing.assert_array_equal(features.argmax(1), expected.argmax(1))
            classes = LabelMap.for_backbone(backbone.spec).classes
            top = [classes[i] for i in features.argmax(1)]
            assert top[0] in {"tabby", "tiger cat", "Egyptian cat"}
            assert top[1] == "espresso"
