"""Loaded backbones (hubtransfer/_backbone.py) on tiny real SavedModels, and spec inspection."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import hubtransfer
from hubtransfer import (
    Backbone,
    BackboneSpec,
    InvalidParameterError,
    UnknownBackboneError,
    load_backbone,
    resolve_spec,
    spec_from_handle,
)
from hubtransfer._catalog import BUILTIN_BACKBONES
from hubtransfer.testing import check_backbone_spec, tiny_spec

EMBEDDED_SPECS = [spec for spec in BUILTIN_BACKBONES if "embedded" in spec.tags]


@pytest.fixture(scope="module")
def fv_spec(tiny_models: dict[str, Path]) -> BackboneSpec:
    return tiny_spec(tiny_models["fv"], name="tiny_backbone_fv")


@pytest.fixture(scope="module")
def logits_spec(tiny_models: dict[str, Path]) -> BackboneSpec:
    return tiny_spec(
        tiny_models["logits"],
        name="tiny_backbone_logits",
        output="classification",
        output_dim=1001,
        label_offset=1,
        label_set="imagenet",
    )


@pytest.fixture(scope="module")
def backbone(fv_spec: BackboneSpec) -> Backbone:
    return load_backbone(fv_spec)


@pytest.fixture
def registered(fv_spec: BackboneSpec) -> Iterator[BackboneSpec]:
    hubtransfer.register_backbone(fv_spec)
    try:
        yield fv_spec
    finally:
        hubtransfer.default_registry().unregister(fv_spec.name)


def images(count: int, seed: int = 0) -> np.ndarray[Any, Any]:
    """Preprocessed-looking float32 images in [0, 1] of the tiny models' size."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, (count, 32, 32, 3)).astype(np.float32)


# --- Loading ------------------------------------------------------------------------------


def test_a_backbone_is_frozen_by_default(backbone: Backbone, fv_spec: BackboneSpec) -> None:
    assert backbone.spec is fv_spec
    assert backbone.path == Path(fv_spec.handle)
    assert backbone.output_dim == 8
    assert backbone.trainable is False
    assert backbone.layer.trainable_weights == []
    assert backbone.layer.non_trainable_weights != []
    assert "tiny_backbone_fv" in repr(backbone)


def test_a_trainable_backbone_has_trainable_weights(fv_spec: BackboneSpec) -> None:
    trainable = load_backbone(fv_spec, trainable=True)
    assert trainable.trainable is True
    assert len(trainable.layer.trainable_weights) > 0


def test_a_backbone_loads_by_registered_name(registered: BackboneSpec) -> None:
    loaded = load_backbone(registered.name)
    assert loaded.spec is registered


def test_load_backbone_of_an_unknown_name_suggests_close_names() -> None:
    with pytest.raises(UnknownBackboneError, match="no_such_name"):
        load_backbone("no_such_name")
    with pytest.raises(LookupError) as caught:
        load_backbone("efficientnet_lite0_embedded_f")
    assert isinstance(caught.value, UnknownBackboneError)
    assert "Did you mean" in str(caught.value)
    assert "'efficientnet_lite0_embedded_fv'" in str(caught.value)


# --- Prediction ---------------------------------------------------------------------------


def test_predict_on_arrays_tensors_and_datasets_agree(backbone: Backbone) -> None:
    batch = images(7)
    labels = np.arange(7, dtype=np.int32)
    expected = backbone(tf.constant(batch)).numpy()
    from_array = backbone.predict(batch, batch_size=3)
    assert from_array.shape == (7, 8) and from_array.dtype == np.float32
    np.testing.assert_allclose(from_array, expected, rtol=1e-5, atol=1e-6)
    from_tensor = backbone.predict(tf.constant(batch), batch_size=32)
    np.testing.assert_allclose(from_tensor, from_array, rtol=1e-5, atol=1e-6)
    pairs = tf.data.Dataset.from_tensor_slices((batch, labels)).batch(4)
    np.testing.assert_allclose(backbone.predict(pairs), from_array, rtol=1e-5, atol=1e-6)
    alone = tf.data.Dataset.from_tensor_slices(batch).batch(2)
    np.testing.assert_allclose(backbone.predict(alone), from_array, rtol=1e-5, atol=1e-6)


def test_predict_on_nothing_gives_an_empty_array(backbone: Backbone) -> None:
    empty = backbone.predict(np.zeros((0, 32, 32, 3), np.float32))
    assert empty.shape == (0, 8) and empty.dtype == np.float32
    assert backbone.predict([]).shape == (0, 8)


@pytest.mark.parametrize("batch_size", [0, -4, True, 2.0, "8", None])
def test_predict_refuses_a_bad_batch_size(backbone: Backbone, batch_size: Any) -> None:
    with pytest.raises(InvalidParameterError, match="'batch_size' parameter") as caught:
        backbone.predict(images(2), batch_size=batch_size)
    assert repr(batch_size) in str(caught.value)


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 32, 32, 1), (32, 32, 3), (2, 32, 32, 4)])
def test_predict_refuses_images_of_the_wrong_shape(
    backbone: Backbone, shape: tuple[int, ...]
) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape(str(shape))):
        backbone.predict(np.zeros(shape, np.float32))


# --- Content hash -------------------------------------------------------------------------


def test_content_hash_is_stable_across_loads_and_tells_models_apart(
    backbone: Backbone, fv_spec: BackboneSpec, logits_spec: BackboneSpec
) -> None:
    again = load_backbone(dataclasses.replace(fv_spec, name="tiny_backbone_fv_again"))
    assert re.fullmatch(r"[0-9a-f]{64}", backbone.content_hash)
    assert again.content_hash == backbone.content_hash
    assert load_backbone(logits_spec).content_hash != backbone.content_hash


# --- Specs from handles -------------------------------------------------------------------


def test_spec_from_handle_inspects_a_feature_vector(tiny_models: dict[str, Path]) -> None:
    handle = str(tiny_models["fv"])
    # The size comes from the signature, which wins over the size offered.
    spec = spec_from_handle(handle, input_size=(64, 64))
    assert spec.output_kind == "feature_vector"
    assert spec.feature_dim == 8 and spec.num_classes is None
    assert spec.input_size == (32, 32)
    assert spec.dynamic_size is False
    assert spec.handle == handle
    assert re.fullmatch(r"custom_[0-9a-f]{12}", spec.name)
    assert spec_from_handle(handle) == spec
    assert spec_from_handle(handle, name="my_tiny").name == "my_tiny"


def test_spec_from_handle_recognises_a_1001_way_imagenet_classifier(
    tiny_models: dict[str, Path],
) -> None:
    spec = spec_from_handle(str(tiny_models["logits"]))
    assert spec.output_kind == "classification"
    assert spec.num_classes == 1001
    assert spec.label_offset == 1
    assert spec.label_set == "imagenet"
    assert spec.input_size == (32, 32)
    assert hubtransfer.LabelMap.for_backbone(spec) == hubtransfer.LabelMap.imagenet()
    # An explicit output kind wins over the guess.
    forced = spec_from_handle(str(tiny_models["logits"]), output_kind="feature_vector")
    assert forced.output_kind == "feature_vector" and forced.feature_dim == 1001


def test_resolve_spec_takes_a_name_a_spec_or_a_path(
    registered: BackboneSpec, tiny_models: dict[str, Path]
) -> None:
    assert resolve_spec(registered.name) is registered
    assert resolve_spec(registered) is registered
    from_path = resolve_spec(str(tiny_models["fv"]))
    assert from_path == spec_from_handle(str(tiny_models["fv"]))
    assert from_path.feature_dim == 8
    with pytest.raises(InvalidParameterError, match="42"):
        resolve_spec(42)  # type: ignore[arg-type]
    with pytest.raises(UnknownBackboneError):
        resolve_spec("tiny_backbone_f")


# --- hubtransfer.testing.check_backbone_spec ----------------------------------------------


def test_check_backbone_spec_accepts_a_matching_spec(
    fv_spec: BackboneSpec, logits_spec: BackboneSpec
) -> None:
    check_backbone_spec(fv_spec)
    check_backbone_spec(logits_spec)


def test_check_backbone_spec_rejects_a_wrong_output_width(
    fv_spec: BackboneSpec, logits_spec: BackboneSpec
) -> None:
    with pytest.raises(AssertionError, match=re.escape("its spec says (2, 9)")):
        check_backbone_spec(dataclasses.replace(fv_spec, feature_dim=9))
    with pytest.raises(AssertionError, match=re.escape("its spec says (2, 1000)")):
        check_backbone_spec(dataclasses.replace(logits_spec, num_classes=1000))


def test_every_embedded_builtin_spec_is_checked() -> None:
    names = {spec.name for spec in EMBEDDED_SPECS}
    assert names == {"efficientnet_lite0_embedded_fv", "efficientnet_lite0_embedded_classifier"}


@pytest.mark.slow
@pytest.mark.parametrize("spec", EMBEDDED_SPECS, ids=lambda spec: spec.name)
def test_embedded_builtin_spec_matches_its_model(spec: BackboneSpec) -> None:
    check_backbone_spec(spec)
