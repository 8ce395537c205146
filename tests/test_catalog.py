"""The built-in catalog: every spec is consistent, documented and round-trips."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from hubtransfer._catalog import BUILTIN_BACKBONES, DEFAULT_BACKBONE, DEFAULT_CLASSIFIER
from hubtransfer._catalog_doc import render_backbones_markdown
from hubtransfer._spec import BackboneSpec

DOC = Path(__file__).resolve().parents[1] / "docs" / "backbones.md"
BY_NAME = {spec.name: spec for spec in BUILTIN_BACKBONES}
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*_(fv|classifier)$")
HANDLE_PATTERN = re.compile(r"^(https://(tfhub\.dev|www\.kaggle\.com)/\S+|embedded://\S+)$")
# Real classes per label set, whatever the offset in front of them.
LABEL_SET_SIZES = {"imagenet": 1000, "imagenet21k": 21843}
SUFFIX_KIND = {"fv": "feature_vector", "classifier": "classification"}

specs = pytest.mark.parametrize("spec", BUILTIN_BACKBONES, ids=lambda spec: spec.name)
classifiers = pytest.mark.parametrize(
    "spec",
    [spec for spec in BUILTIN_BACKBONES if spec.output_kind == "classification"],
    ids=lambda spec: spec.name,
)


def test_names_are_unique() -> None:
    counts = Counter(spec.name for spec in BUILTIN_BACKBONES)
    assert [name for name, count in counts.items() if count > 1] == []


def test_defaults_are_the_embedded_offline_backbone() -> None:
    backbone, classifier = BY_NAME[DEFAULT_BACKBONE], BY_NAME[DEFAULT_CLASSIFIER]
    assert backbone.output_kind == "feature_vector"
    assert classifier.output_kind == "classification"
    for spec in (backbone, classifier):
        assert spec.handle.startswith("embedded://")
        assert {"embedded", "offline"} <= spec.tags


@specs
def test_name_follows_the_naming_rule(spec: BackboneSpec) -> None:
    match = NAME_PATTERN.match(spec.name)
    assert match is not None, f"{spec.name!r} is not '<model>_fv' or '<model>_classifier'"
    assert spec.output_kind == SUFFIX_KIND[match.group(1)]


@specs
def test_companion_points_back(spec: BackboneSpec) -> None:
    if spec.companion is None:
        return
    companion = BY_NAME.get(spec.companion)
    assert companion is not None, f"{spec.name}'s companion {spec.companion!r} is not built in"
    assert companion.companion == spec.name
    assert companion.output_kind != spec.output_kind
    assert companion.input_size == spec.input_size
    assert companion.preprocessing == spec.preprocessing
    assert companion.dynamic_size == spec.dynamic_size


@specs
def test_every_hub_network_has_both_outputs(spec: BackboneSpec) -> None:
    assert spec.companion is not None, f"{spec.name} has no companion"


@classifiers
def test_classifier_labels_are_consistent(spec: BackboneSpec) -> None:
    if spec.num_classes == 1001:
        assert (spec.label_offset, spec.label_set) == (1, "imagenet")
    assert spec.label_set in LABEL_SET_SIZES
    assert spec.num_classes is not None
    assert spec.num_classes - spec.label_offset == LABEL_SET_SIZES[spec.label_set]


@specs
def test_feature_vectors_have_a_feature_dim(spec: BackboneSpec) -> None:
    if spec.output_kind == "feature_vector":
        assert spec.feature_dim is not None and spec.feature_dim > 0
        assert spec.num_classes is None


@specs
def test_handle_is_a_hub_url_or_embedded(spec: BackboneSpec) -> None:
    assert HANDLE_PATTERN.match(spec.handle), spec.handle


@specs
def test_spec_is_documented(spec: BackboneSpec) -> None:
    assert spec.source.strip()
    assert spec.licence.strip() and spec.licence != "unknown"
    assert spec.description.strip() and "\n" not in spec.description
    assert spec.tags
    assert spec.value_range == (0.0, 1.0)
    if spec.handle.startswith("https://"):
        assert spec.source.startswith("https://"), "TF-Hub specs cite the page they were read from"


@specs
def test_tags_name_the_output_kind(spec: BackboneSpec) -> None:
    assert spec.output_kind in spec.tags
    assert not (set(SUFFIX_KIND.values()) - {spec.output_kind}) & spec.tags


@specs
def test_json_round_trip(spec: BackboneSpec) -> None:
    data = json.loads(json.dumps(spec.to_json()))
    assert BackboneSpec.from_json(data) == spec


def test_doc_is_generated_from_the_catalog() -> None:
    assert DOC.read_text(encoding="utf-8") == render_backbones_markdown(BUILTIN_BACKBONES), (
        "docs/backbones.md is stale; run python scripts/generate_backbones_doc.py"
    )


def test_doc_lists_every_spec_once() -> None:
    page = render_backbones_markdown(BUILTIN_BACKBONES)
    for spec in BUILTIN_BACKBONES:
        assert page.count(f"| `{spec.name}` |") == 1


@pytest.mark.network
@pytest.mark.parametrize(
    "spec",
    [spec for spec in BUILTIN_BACKBONES if spec.handle.startswith("https://")],
    ids=lambda spec: spec.name,
)
def test_hub_model_matches_its_spec(spec: BackboneSpec) -> None:
    """Downloads the model and checks its output width (settles doubtful doc values)."""
    from hubtransfer.testing import check_backbone_spec

    check_backbone_spec(spec)
