"""What hubtransfer 0.1.0 wrote still loads: a saved model, a feature store, pickles.

The fixtures in ``tests/compat/v0_1_0`` were written by hubtransfer 0.1.0
(``make_fixtures.py`` there says how): a model folder on a tiny real
backbone, the feature store of its images, and pickles of its
:class:`~hubtransfer.Preprocessor` and :class:`~hubtransfer.LabelMap`.
Every later version must load them and give the same answers.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hubtransfer

FIXTURES = Path(__file__).parent / "compat" / "v0_1_0"


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())
    return result


@pytest.fixture
def images(tmp_path: Path, expected: dict[str, Any]) -> list[Path]:
    copy = shutil.copytree(FIXTURES / "images", tmp_path / "images")
    return [copy.parent / name for name in expected["files"]]


def test_a_model_saved_by_0_1_0_predicts_as_it_did(
    tmp_path: Path, isolated_cache: Path, images: list[Path], expected: dict[str, Any]
) -> None:
    folder = shutil.copytree(FIXTURES / "model", tmp_path / "model")
    model = hubtransfer.TransferClassifier.load(folder)
    assert list(model.classes_) == expected["classes"]
    assert model.temperature_ == pytest.approx(expected["temperature"], rel=1e-12)
    np.testing.assert_allclose(
        model.predict_proba(images), np.asarray(expected["probabilities"]), rtol=0, atol=1e-6
    )
    assert list(model.predict(images)) == expected["labels"]


def test_a_feature_store_written_by_0_1_0_is_read_and_used(
    tmp_path: Path, isolated_cache: Path, images: list[Path], expected: dict[str, Any]
) -> None:
    model = hubtransfer.TransferClassifier.load(
        shutil.copytree(FIXTURES / "model", tmp_path / "model")
    )
    store = hubtransfer.FeatureStore.for_backbone(model.backbone_, model.preprocessor_.contract)
    # Today's key finds the store that 0.1.0 wrote for the same backbone and preprocessing.
    assert store.directory.name == expected["store"]
    shutil.copytree(FIXTURES / "feature-store" / expected["store"], store.directory)
    shards = sorted(p.name for p in store.directory.iterdir())
    digests = [hubtransfer.file_digest(path) for path in images]
    assert digests == expected["digests"]
    np.testing.assert_array_equal(store.get(digests), np.float32(expected["features"]))
    np.testing.assert_allclose(
        model.predict_proba(images), np.asarray(expected["probabilities"]), rtol=0, atol=1e-6
    )
    # Served from the old store: no image was extracted again.
    assert sorted(p.name for p in store.directory.iterdir()) == shards


def test_pickles_made_by_0_1_0_load(tmp_path: Path, isolated_cache: Path) -> None:
    model = hubtransfer.TransferClassifier.load(
        shutil.copytree(FIXTURES / "model", tmp_path / "model")
    )
    with open(FIXTURES / "preprocessor.pkl", "rb") as handle:
        preprocessor = pickle.load(handle)
    with open(FIXTURES / "labelmap.pkl", "rb") as handle:
        label_map = pickle.load(handle)
    assert isinstance(preprocessor, hubtransfer.Preprocessor)
    assert preprocessor == model.preprocessor_
    assert isinstance(label_map, hubtransfer.LabelMap)
    assert label_map == model.label_map_
