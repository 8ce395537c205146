"""The feature store and extraction: shards on disk, computed once per image.

Backbone work is observed, not mocked: the tests wrap the loaded backbone's
own ``predict`` to count the images it really runs on.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import FeatureStore, extract_features, file_digest
from hubtransfer._features import AUTO_CONVERSION_MIN_IMAGES
from hubtransfer._runtime import TFLITE_ATOL, TFLITE_RTOL, openvino_available, select_runtime
from hubtransfer.testing import tiny_spec


def _digest(index: int) -> str:
    return f"{index:064x}"


def _shards(directory: Path) -> list[Path]:
    return sorted(directory.glob("shard-*"))


def _write_images(folder: Path, count: int, *, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        rng = np.random.default_rng(index)
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        path = folder / f"{index:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


# --- FeatureStore --------------------------------------------------------------------------


def test_put_get_missing_len_contains(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store", feature_dim=3)
    assert len(store) == 0
    assert not (tmp_path / "store").exists()
    features = np.arange(6, dtype=np.float32).reshape(2, 3)
    store.put([_digest(1), _digest(2)], features)
    assert len(store) == 2
    assert _digest(1) in store
    assert _digest(3) not in store
    assert store.missing([_digest(3), _digest(2), _digest(4), _digest(1)]) == [0, 2]
    result = store.get([_digest(2), _digest(1)])
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, features[::-1])


def test_get_preserves_order_across_shards_and_repeats(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=2)
    first = np.array([[0, 0], [1, 1], [2, 2]], np.float32)
    second = np.array([[3, 3], [4, 4]], np.float32)
    store.put([_digest(i) for i in range(3)], first)
    store.put([_digest(i) for i in range(3, 5)], second)
    assert len(_shards(tmp_path)) == 2
    order = [4, 0, 3, 2, 2, 1, 4]
    result = store.get([_digest(i) for i in order])
    np.testing.assert_array_equal(result[:, 0], np.asarray(order, np.float32))


def test_a_second_store_on_the_folder_sees_the_shards(tmp_path: Path) -> None:
    FeatureStore(tmp_path, feature_dim=2).put([_digest(7)], np.ones((1, 2)))
    reopened = FeatureStore(tmp_path, feature_dim=2)
    assert len(reopened) == 1
    np.testing.assert_array_equal(reopened.get([_digest(7)]), np.ones((1, 2), np.float32))


def test_get_fills_a_memmap(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path / "store", feature_dim=4)
    features = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    store.put([_digest(i) for i in range(5)], features)
    out = np.memmap(tmp_path / "features.dat", np.float32, mode="w+", shape=(5, 4))
    result = store.get([_digest(i) for i in reversed(range(5))], out=out)
    assert result is out
    out.flush()
    stored = np.memmap(tmp_path / "features.dat", np.float32, mode="r", shape=(5, 4))
    np.testing.assert_array_equal(stored, features[::-1])


def test_keys_longer_than_a_sha256_are_kept_whole(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=1)
    long_key = "k" * 64 + "-and-more"
    store.put([long_key, "short"], np.array([[1.0], [2.0]]))
    reopened = FeatureStore(tmp_path, feature_dim=1)
    assert long_key in reopened
    assert "k" * 64 not in reopened
    np.testing.assert_array_equal(reopened.get([long_key, "short"]), [[1.0], [2.0]])


def test_put_and_get_errors(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=3)
    with pytest.raises(
        hubtransfer.InvalidParameterError,
        match=re.escape("FeatureStore.put needs features shaped (2, 3); got (2, 4)."),
    ):
        store.put([_digest(0), _digest(1)], np.zeros((2, 4)))
    store.put([], np.zeros((0, 3)))
    assert not _shards(tmp_path)
    with pytest.raises(KeyError):
        store.get([_digest(9)])


@pytest.mark.parametrize("feature_dim", [0, -1, 2.0, True, "8"])
def test_feature_dim_is_validated(tmp_path: Path, feature_dim: object) -> None:
    message = (
        "The 'feature_dim' parameter of FeatureStore must be a positive int. "
        f"Got {feature_dim!r} instead."
    )
    with pytest.raises(hubtransfer.InvalidParameterError, match=re.escape(message)):
        FeatureStore(tmp_path, feature_dim=feature_dim)  # type: ignore[arg-type]


def test_a_leftover_temporary_shard_is_ignored(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=2)
    store.put([_digest(1)], np.ones((1, 2)))
    # What a crash between writing and renaming leaves behind.
    leftover = tmp_path / ".shard-00000000000000000001-deadbeef.tmp"
    leftover.mkdir()
    np.save(leftover / "digests.npy", np.asarray([_digest(2)]))
    (leftover / "features.npy").write_bytes(b"\x93NUMPY half-written")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reopened = FeatureStore(tmp_path, feature_dim=2)
        assert len(reopened) == 1
        assert reopened.missing([_digest(1), _digest(2)]) == [1]
    assert leftover.is_dir()


@pytest.mark.parametrize("keep_bytes", [0, 10, 100, -4], ids=["empty", "magic", "header", "data"])
def test_a_corrupt_shard_is_warned_about_and_removed(tmp_path: Path, keep_bytes: int) -> None:
    store = FeatureStore(tmp_path, feature_dim=2)
    store.put([_digest(1), _digest(2)], np.ones((2, 2)))
    store.put([_digest(3)], np.full((1, 2), 3.0))
    broken = next(s for s in _shards(tmp_path) if len(np.load(s / "digests.npy")) == 2)
    features_file = broken / "features.npy"
    features_file.write_bytes(features_file.read_bytes()[:keep_bytes])
    reopened = FeatureStore(tmp_path, feature_dim=2)
    with pytest.warns(UserWarning, match=re.escape(f"shard {str(broken)!r} is damaged")):
        assert reopened.missing([_digest(1), _digest(2), _digest(3)]) == [0, 1]
    assert not broken.exists()
    assert len(reopened) == 1


def test_for_backbone_keys_follow_weights_and_contract(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    other = hubtransfer.load_backbone(
        tiny_spec(
            tiny_models["logits"], name="tiny_logits", output="classification", output_dim=1001
        )
    )
    contract = backbone.spec.preprocessing
    store = FeatureStore.for_backbone(backbone, contract, root=tmp_path)
    assert store.directory.parent == tmp_path
    assert store.feature_dim == backbone.output_dim == 8
    same = FeatureStore.for_backbone(backbone, contract, root=tmp_path)
    assert same.directory == store.directory
    directories = {
        store.directory,
        FeatureStore.for_backbone(
            backbone, dataclasses.replace(contract, resize_method="area"), root=tmp_path
        ).directory,
        FeatureStore.for_backbone(
            backbone, dataclasses.replace(contract, value_range=(-1.0, 1.0)), root=tmp_path
        ).directory,
        FeatureStore.for_backbone(other, contract, root=tmp_path).directory,
    }
    assert len(directories) == 4
    assert FeatureStore.for_backbone(other, contract, root=tmp_path).feature_dim == 1001


def test_for_backbone_defaults_to_the_cache(
    tiny_models: dict[str, Path], isolated_cache: Path
) -> None:
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    store = FeatureStore.for_backbone(backbone, backbone.spec.preprocessing)
    assert store.directory.parent == isolated_cache / "features"


# --- extract_features ----------------------------------------------------------------------


class _Counted:
    """The tiny backbone's real runtime (``select_runtime``), counting the images it runs on.

    Tests pass it as ``extract_features(..., runtime=counted)``.
    """

    def __init__(self, backbone: hubtransfer.Backbone) -> None:
        self.backbone = backbone
        self.runtime = select_runtime(backbone)
        self.images = 0
        self.calls = 0

    @property
    def name(self) -> str:
        return self.runtime.name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        result = self.runtime(batch)
        self.calls += 1
        self.images += len(result)
        return result


@pytest.fixture
def counted(tiny_models: dict[str, Path]) -> Iterator[_Counted]:
    yield _Counted(hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])))


@pytest.fixture
def preprocessor(tiny_models: dict[str, Path]) -> hubtransfer.Preprocessor:
    return hubtransfer.Preprocessor.from_spec(tiny_spec(tiny_models["fv"]))


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "data.bin"
    path.write_bytes(b"hubtransfer" * 100_000)
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_stored_features_equal_direct_extraction_and_are_reused(
    counted: _Counted,
    preprocessor: hubtransfer.Preprocessor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = _write_images(tmp_path / "images", 10)
    backbone = counted.backbone
    direct = extract_features(
        backbone, preprocessor, paths, batch_size=4, verbose=False, runtime=counted
    )
    assert direct.shape == (10, 8)
    assert direct.dtype == np.float32
    store = FeatureStore(tmp_path / "store", feature_dim=8)
    counted.images = 0
    first = extract_features(
        backbone, preprocessor, paths, store=store, batch_size=4, verbose=False, runtime=counted
    )
    np.testing.assert_allclose(first, direct, rtol=1e-6, atol=1e-7)
    assert counted.images == 10
    assert len(store) == 10

    counted.calls = counted.images = 0
    again = extract_features(
        backbone,
        preprocessor,
        paths[::-1],
        store=FeatureStore(store.directory, feature_dim=8),
        runtime=counted,
    )
    assert counted.calls == 0
    np.testing.assert_array_equal(again, first[::-1])
    assert "Features of all 10 images found in the cache." in capsys.readouterr().err


def test_identical_files_are_extracted_once(
    counted: _Counted, preprocessor: hubtransfer.Preprocessor, tmp_path: Path
) -> None:
    paths = _write_images(tmp_path / "images", 4)
    copy = tmp_path / "elsewhere" / "same-bytes.png"
    copy.parent.mkdir()
    shutil.copyfile(paths[1], copy)
    store = FeatureStore(tmp_path / "store", feature_dim=8)
    features = extract_features(
        counted.backbone,
        preprocessor,
        [*paths, copy, paths[1]],
        store=store,
        verbose=False,
        runtime=counted,
    )
    assert counted.images == 4
    assert len(store) == 4
    np.testing.assert_array_equal(features[4], features[1])
    np.testing.assert_array_equal(features[5], features[1])


def test_a_corrupt_shard_is_extracted_again(
    counted: _Counted, preprocessor: hubtransfer.Preprocessor, tmp_path: Path
) -> None:
    paths = _write_images(tmp_path / "images", 6)
    store = FeatureStore(tmp_path / "store", feature_dim=8)
    expected = extract_features(
        counted.backbone,
        preprocessor,
        paths,
        store=store,
        chunk_size=3,
        verbose=False,
        runtime=counted,
    )
    broken = _shards(store.directory)[0]
    (broken / "features.npy").write_bytes((broken / "features.npy").read_bytes()[:-16])
    counted.images = 0
    with pytest.warns(UserWarning, match="is damaged"):
        features = extract_features(
            counted.backbone,
            preprocessor,
            paths,
            store=FeatureStore(store.directory, feature_dim=8),
            verbose=False,
            runtime=counted,
        )
    assert counted.images == 3
    np.testing.assert_allclose(features, expected, rtol=1e-6, atol=1e-7)
    assert len(FeatureStore(store.directory, feature_dim=8)) == 6


def test_a_crash_keeps_finished_chunks(
    counted: _Counted, preprocessor: hubtransfer.Preprocessor, tmp_path: Path
) -> None:
    paths = _write_images(tmp_path / "images", 7)
    bad = paths[4]
    # A sound header (it passes the check before the pipeline), then the data cut short:
    # only the decoder inside the pipeline finds out, halfway through the extraction.
    bad.write_bytes(bad.read_bytes()[:120])
    store = FeatureStore(tmp_path / "store", feature_dim=8)
    with pytest.raises(hubtransfer.ImageDecodeError, match=re.escape(str(bad))):
        extract_features(
            counted.backbone,
            preprocessor,
            paths,
            store=store,
            batch_size=1,
            chunk_size=3,
            verbose=False,
            runtime=counted,
        )
    # The first chunk (three images) was stored before the bad file stopped the second.
    assert len(FeatureStore(store.directory, feature_dim=8)) == 3
    assert counted.images == 4  # the fourth, in flight, is lost with the crash
    assert not list(store.directory.glob(".*.tmp"))

    _write_images(tmp_path / "images", 1, start=4)
    counted.images = 0
    features = extract_features(
        counted.backbone,
        preprocessor,
        paths,
        store=FeatureStore(store.directory, feature_dim=8),
        chunk_size=3,
        verbose=False,
        runtime=counted,
    )
    assert counted.images == 4
    direct = extract_features(counted.backbone, preprocessor, paths, verbose=False, runtime=counted)
    np.testing.assert_allclose(features, direct, rtol=1e-6, atol=1e-7)


def test_extraction_reports_progress(
    counted: _Counted,
    preprocessor: hubtransfer.Preprocessor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = _write_images(tmp_path / "images", 5)
    store = FeatureStore(tmp_path / "store", feature_dim=8)
    extract_features(
        counted.backbone, preprocessor, paths, store=store, chunk_size=2, runtime=counted
    )
    err = capsys.readouterr().err
    assert "Extracting features: 2/5 images" in err
    assert "Extracting features: 5/5 images" in err
    assert err.endswith("\n")


def test_no_images_gives_no_features(
    counted: _Counted, preprocessor: hubtransfer.Preprocessor, tmp_path: Path
) -> None:
    store = FeatureStore(tmp_path / "store", feature_dim=8)
    features = extract_features(
        counted.backbone, preprocessor, [], store=store, verbose=False, runtime=counted
    )
    assert features.shape == (0, 8)
    assert counted.calls == 0


# --- Runtimes ------------------------------------------------------------------------------


def test_runtime_choices_give_the_same_features(
    tiny_models: dict[str, Path],
    preprocessor: hubtransfer.Preprocessor,
    tmp_path: Path,
    isolated_cache: Path,
) -> None:
    paths = _write_images(tmp_path / "images", 9)
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    reference = backbone.predict(preprocessor.batch(paths))
    for runtime in ("tensorflow", "auto"):
        features = extract_features(
            backbone, preprocessor, paths, batch_size=4, verbose=False, runtime=runtime
        )
        np.testing.assert_allclose(features, reference, rtol=1e-6, atol=1e-7)
    # Nine images are too few to pay for a conversion.
    assert AUTO_CONVERSION_MIN_IMAGES > 9
    assert not (isolated_cache / "tflite").exists()

    on_tflite = extract_features(
        backbone, preprocessor, paths, batch_size=4, verbose=False, runtime="tflite"
    )
    np.testing.assert_allclose(on_tflite, reference, rtol=TFLITE_RTOL, atol=TFLITE_ATOL)
    assert len(list((isolated_cache / "tflite").glob("*.tflite"))) == 1
    # Once converted, "auto" uses the model for any number of images: on OpenVINO when
    # it is installed, else on TFLite.
    again = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    on_auto = extract_features(again, preprocessor, paths, batch_size=5, verbose=False)
    fastest = "openvino" if openvino_available() else "tflite"
    on_fastest = extract_features(
        hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])),
        preprocessor,
        paths,
        batch_size=5,
        verbose=False,
        runtime=fastest,
    )
    np.testing.assert_array_equal(on_auto, on_fastest)
    np.testing.assert_allclose(on_auto, reference, rtol=TFLITE_RTOL, atol=TFLITE_ATOL)


def test_the_store_is_shared_by_both_runtimes(
    tiny_models: dict[str, Path],
    preprocessor: hubtransfer.Preprocessor,
    tmp_path: Path,
    isolated_cache: Path,
) -> None:
    """Features agree to ~1e-6 across runtimes, so the store's key leaves the runtime out."""
    paths = _write_images(tmp_path / "images", 5)
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    contract = backbone.spec.preprocessing
    store = FeatureStore.for_backbone(backbone, contract, root=tmp_path / "stores")
    first = extract_features(
        backbone, preprocessor, paths, store=store, verbose=False, runtime="tensorflow"
    )
    # All stored: "auto" needs no runtime at all, so nothing is converted.
    again = extract_features(
        backbone,
        preprocessor,
        paths,
        store=FeatureStore.for_backbone(backbone, contract, root=tmp_path / "stores"),
        verbose=False,
        runtime="auto",
    )
    np.testing.assert_array_equal(again, first)
    assert not (isolated_cache / "tflite").exists()


@pytest.mark.parametrize("runtime", ["onnx", None, 3])
def test_unknown_runtimes_are_rejected(
    counted: _Counted, preprocessor: hubtransfer.Preprocessor, runtime: object
) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match="'runtime' parameter"):
        extract_features(
            counted.backbone,
            preprocessor,
            [],
            verbose=False,
            runtime=runtime,  # type: ignore[arg-type]
        )
