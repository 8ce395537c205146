"""Backbone specs and preprocessing contracts: validation and JSON round-trips."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubtransfer import BackboneSpec, InvalidParameterError, PreprocessingContract


def _fv(**changes: object) -> BackboneSpec:
    spec = BackboneSpec(
        name="m_fv",
        handle="/m",
        input_size=(224, 224),
        output_kind="feature_vector",
        feature_dim=1280,
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"name": "Has Spaces"}, "name"),
        ({"handle": ""}, "handle"),
        ({"input_size": (224,)}, "input_size"),
        ({"input_size": (0, 224)}, "input_size"),
        ({"output_kind": "logits"}, "output_kind"),
        ({"feature_dim": -3}, "feature_dim"),
        ({"feature_dim": None}, "feature_dim"),
        ({"num_classes": 10}, "num_classes"),
        ({"value_range": (1.0, 0.0)}, "value_range"),
        ({"mean": (0.5, 0.5, 0.5)}, "mean"),
        ({"mean": (0.5, 0.5, 0.5), "std": (0.0, 1.0, 1.0)}, "std"),
        ({"resize_method": "lanczos"}, "resize_method"),
        ({"tags": {"a"}}, "tags"),
        ({"label_offset": -1}, "label_offset"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"'{parameter}'") as caught:
        _fv(**changes)
    assert "Got" in str(caught.value)


def test_classifier_needs_num_classes_and_offset_below_it() -> None:
    with pytest.raises(InvalidParameterError, match="'num_classes'"):
        BackboneSpec(name="c", handle="/c", input_size=(8, 8), output_kind="classification")
    with pytest.raises(InvalidParameterError, match="'label_offset'"):
        BackboneSpec(
            name="c",
            handle="/c",
            input_size=(8, 8),
            output_kind="classification",
            num_classes=2,
            label_offset=2,
        )


def test_output_dim_and_preprocessing_follow_the_spec() -> None:
    spec = _fv(mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0), input_size=(160, 128))
    assert spec.output_dim == 1280
    assert spec.preprocessing == PreprocessingContract(
        input_size=(160, 128), mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0)
    )


sizes = st.tuples(st.integers(1, 1024), st.integers(1, 1024))
floats = st.floats(-1e3, 1e3, allow_nan=False)
triples = st.tuples(floats, floats, floats)
positive_triples = st.tuples(*(st.floats(1e-3, 1e3),) * 3)


@st.composite
def contracts(draw: st.DrawFn) -> PreprocessingContract:
    low = draw(st.floats(-10, 10))
    high = draw(st.floats(low + 1e-3, low + 100))
    normalised = draw(st.booleans())
    return PreprocessingContract(
        input_size=draw(sizes),
        value_range=(low, high),
        mean=draw(triples) if normalised else None,
        std=draw(positive_triples) if normalised else None,
        resize_method=draw(st.sampled_from(["bilinear", "nearest", "bicubic", "area"])),
    )


@given(contracts())
def test_contract_json_round_trip(contract: PreprocessingContract) -> None:
    data = json.loads(json.dumps(contract.to_json()))
    assert PreprocessingContract.from_json(data) == contract


@given(
    contract=contracts(),
    name=st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,30}", fullmatch=True),
    classifier=st.booleans(),
    width=st.integers(2, 30000),
    tags=st.frozensets(st.text(min_size=1, max_size=8), max_size=4),
)
def test_spec_json_round_trip(
    contract: PreprocessingContract, name: str, classifier: bool, width: int, tags: frozenset[str]
) -> None:
    kind = {"num_classes": width, "label_offset": 1} if classifier else {"feature_dim": width}
    spec = BackboneSpec(
        name=name,
        handle="https://tfhub.dev/x/1",
        input_size=contract.input_size,
        output_kind="classification" if classifier else "feature_vector",
        value_range=contract.value_range,
        mean=contract.mean,
        std=contract.std,
        resize_method=contract.resize_method,
        tags=tags,
        **kind,  # type: ignore[arg-type]
    )
    assert BackboneSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_from_json_reports_missing_fields() -> None:
    with pytest.raises(InvalidParameterError, match="backbone spec"):
        BackboneSpec.from_json({"input_size": [1, 1], "value_range": [0, 1]})
    with pytest.raises(InvalidParameterError, match="preprocessing contract"):
        PreprocessingContract.from_json({})
