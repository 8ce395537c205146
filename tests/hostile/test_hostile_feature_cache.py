"""Never a wrong answer from the feature cache: changed shards are found, removed, recomputed.

The attacks change a shard's bytes on disk the ways a bad disk, a bad copy
or a careless hand would (flipped bytes of the same size, a valid ``.npy``
full of NaN, with and without the checksums shards carry since they were
added, a shard of another feature width), then fit, predict and evaluate on
the same files and compare with what the untouched cache gave. That shards
written before checksums are still used is ``tests/test_compat.py``'s.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from _hostile import FAST

import hubtransfer
from hubtransfer import FeatureStore, TransferClassifier
from hubtransfer._cli import main


def _shards(store: FeatureStore) -> list[Path]:
    return sorted(store.directory.glob("shard-*"))


@pytest.fixture
def cached(
    tiny_backbone: hubtransfer.BackboneSpec, data: Path, isolated_cache: Path
) -> tuple[TransferClassifier, np.ndarray]:
    """A model fitted on ``data`` with a fresh cache, and its probabilities on ``data``."""
    model = TransferClassifier(tiny_backbone, validation_split=0.0, **FAST).fit(data)
    return model, model.predict_proba(data)


def _flip_bytes(file: Path) -> None:
    data = bytearray(file.read_bytes())
    # Far from the header: feature values, the same number of bytes.
    for offset in range(len(data) - 64, len(data) - 8, 4):
        data[offset] ^= 0x40
    file.write_bytes(bytes(data))


def _nan_shard(file: Path) -> None:
    features = np.load(file)
    np.save(file, np.full_like(features, np.nan))


def _legacy_nan_shard(file: Path) -> None:
    # As written before shards carried checksums: only shape, type and values can be checked.
    (file.parent / "checksums.json").unlink()
    _nan_shard(file)


@pytest.mark.parametrize(
    ("damage", "warning"),
    [
        (_flip_bytes, "features.npy does not match its checksum"),
        (_nan_shard, "features.npy does not match its checksum"),
        (_legacy_nan_shard, "features.npy holds values that are not finite"),
    ],
    ids=["flipped bytes", "NaN", "NaN without checksums"],
)
def test_a_changed_shard_is_reported_removed_and_recomputed(
    cached: tuple[TransferClassifier, np.ndarray],
    tiny_backbone: hubtransfer.BackboneSpec,
    data: Path,
    damage: object,
    warning: str,
) -> None:
    model, expected = cached
    assert model._store is not None
    [shard] = _shards(model._store)
    damage(shard / "features.npy")  # type: ignore[operator]
    fresh = TransferClassifier.load(model.save(data.parent / "m"))
    with pytest.warns(UserWarning, match=re.escape(warning)) as caught:
        probabilities = fresh.predict_proba(data)
    assert any(str(model._store.directory) in str(w.message) for w in caught)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    # Recomputed into a new, valid shard: the next reader is silent and gets the same.
    [replacement] = _shards(model._store)
    assert replacement != shard
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = TransferClassifier(tiny_backbone, validation_split=0.0, **FAST).fit(data)
    np.testing.assert_allclose(again.predict_proba(data), expected, atol=1e-5)


def test_evaluate_in_the_cli_after_a_flipped_byte_scores_as_before(
    cached: tuple[TransferClassifier, np.ndarray],
    data: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, _ = cached
    model_dir = model.save(data.parent / "model")
    assert main(["evaluate", str(model_dir), str(data), "--json"]) == 0
    before = capsys.readouterr().out
    assert model._store is not None
    for shard in _shards(model._store):
        _flip_bytes(shard / "features.npy")
    with pytest.warns(UserWarning, match="does not match its checksum"):
        assert main(["evaluate", str(model_dir), str(data), "--json"]) == 0
    assert capsys.readouterr().out == before


def test_a_flipped_digest_never_serves_another_images_features(
    cached: tuple[TransferClassifier, np.ndarray], data: Path
) -> None:
    model, expected = cached
    assert model._store is not None
    [shard] = _shards(model._store)
    digests = np.load(shard / "digests.npy")
    np.save(shard / "digests.npy", digests[::-1].copy())  # rows now name the wrong images
    with pytest.warns(UserWarning, match="digests.npy does not match its checksum"):
        probabilities = model.predict_proba(data)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_a_store_of_another_width_leaves_the_shards_alone(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=8)
    store.put(["a" * 64, "b" * 64], np.arange(16, dtype=np.float32).reshape(2, 8))
    before = {p.name: p.read_bytes() for p in _shards(store)[0].iterdir()}
    narrow = FeatureStore(tmp_path, feature_dim=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert narrow.missing(["a" * 64]) == [0]
        assert len(narrow) == 0
    assert {p.name: p.read_bytes() for p in _shards(store)[0].iterdir()} == before
    np.testing.assert_array_equal(
        FeatureStore(tmp_path, feature_dim=8).get(["b" * 64]), [np.arange(8, 16)]
    )


def test_get_refuses_a_shard_that_changed_after_indexing(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=2)
    store.put(["a" * 64], np.ones((1, 2), np.float32))
    reader = FeatureStore(tmp_path, feature_dim=2)
    assert "a" * 64 in reader  # indexed, features not read yet
    _nan_shard(_shards(store)[0] / "features.npy")
    with (
        pytest.warns(UserWarning, match="does not match its checksum"),
        pytest.raises(KeyError, match="failed its check"),
    ):
        reader.get(["a" * 64])
    assert _shards(store) == []
