"""Fine-tuning the top of the backbone, with BatchNorm kept in inference mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hubtransfer
from hubtransfer import Augmentation, InvalidParameterError, TransferClassifier
from hubtransfer._finetune import fine_tune, trainable_groups
from hubtransfer.testing import make_colour_folder, tiny_spec


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_colour_folder(tmp_path / "data", per_class=8, noise=20)


def _values(layer: object, group: str) -> list[np.ndarray]:
    return [v.numpy().copy() for v in layer.variables if v.name.startswith(group)]  # type: ignore[attr-defined]


def test_only_the_top_layers_change_and_batch_norm_statistics_stay(
    tiny_models: dict[str, Path], folder: Path, isolated_cache: Path
) -> None:
    spec = tiny_spec(tiny_models["fv"], name="ft_tiny_fv")
    backbone = hubtransfer.load_backbone(spec, trainable=True)
    groups = trainable_groups(backbone)
    assert len(groups) >= 3
    bottom, top = groups[0], groups[-1]
    before_bottom, before_top = _values(backbone.layer, bottom), _values(backbone.layer, top)
    moving = [v.numpy().copy() for v in backbone.layer.variables if "moving" in v.name]
    assert moving, "the tiny backbone has BatchNorm statistics"
    head = hubtransfer.HeadTrainer(epochs=1, verbose=0).build_head(8, 3)
    collection = hubtransfer.scan_image_folder(folder)
    result = fine_tune(
        backbone,
        head,
        hubtransfer.Preprocessor.from_spec(spec),
        collection.paths,
        collection.labels,
        layers=1,
        epochs=2,
        learning_rate=1e-2,
        verbose=0,
    )
    assert result.trained_groups == (top,)
    assert result.history["loss"] and len(result.history["loss"]) == 2
    for old, new in zip(before_bottom, _values(backbone.layer, bottom), strict=True):
        np.testing.assert_array_equal(old, new)
    assert any(
        not np.array_equal(old, new)
        for old, new in zip(before_top, _values(backbone.layer, top), strict=True)
    )
    after = [v.numpy() for v in backbone.layer.variables if "moving" in v.name]
    for old, new in zip(moving, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_fine_tuned_model_saves_loads_and_predicts_the_same(
    tiny_models: dict[str, Path], folder: Path, isolated_cache: Path, tmp_path: Path
) -> None:
    spec = tiny_spec(tiny_models["fv"], name="ft_tiny_fv")
    model = TransferClassifier(
        spec,
        epochs=5,
        learning_rate=0.05,
        fine_tune="all",
        fine_tune_epochs=1,
        fine_tune_learning_rate=1e-3,
        augmentation=Augmentation(rotation=0.1),
        verbose=0,
    ).fit(folder)
    assert model.fine_tune_result_ is not None
    assert model.backbone_.spec.name == "ft_tiny_fv_finetuned"
    assert "fine_tune_loss" in model.history_
    original = hubtransfer.load_backbone(spec)
    assert model.backbone_.content_hash != original.content_hash
    saved = model.save(tmp_path / "model")
    loaded = TransferClassifier.load(saved)
    np.testing.assert_array_equal(loaded.predict_proba(folder), model.predict_proba(folder))
    assert loaded.augmentation == Augmentation(rotation=0.1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fine_tune": 0}, "'fine_tune' parameter"),
        ({"fine_tune": "top"}, "'fine_tune' parameter"),
        ({"fine_tune": 1, "fine_tune_epochs": 0}, "'fine_tune_epochs' parameter"),
        ({"fine_tune": 1, "fine_tune_learning_rate": 2.0}, "'fine_tune_learning_rate'"),
        ({"augmentation": True}, "needs 'fine_tune'"),
        ({"fine_tune": 1, "augmentation": "yes"}, "'augmentation' parameter"),
    ],
)
def test_fine_tune_parameters_are_validated(
    params: dict[str, object], message: str, folder: Path
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        TransferClassifier(**params).fit(folder)  # type: ignore[arg-type]


def test_fine_tuning_needs_image_files(tiny_models: dict[str, Path], isolated_cache: Path) -> None:
    images = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    model = TransferClassifier(
        tiny_spec(tiny_models["fv"], name="ft_tiny_fv"), fine_tune=1, epochs=1, verbose=0
    )
    with pytest.raises(InvalidParameterError, match="needs image files"):
        model.fit(images, [0, 1, 0, 1, 0, 1], classes=["a", "b"])


def test_augmentation_rejects_bad_ranges() -> None:
    with pytest.raises(InvalidParameterError, match="'zoom' parameter of Augmentation"):
        Augmentation(zoom=1.5)
