"""Tests for LabelMap and Prediction (hubtransfer/_labels.py)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hubtransfer
from hubtransfer import (
    BackboneSpec,
    InvalidParameterError,
    LabelMap,
    LabelMapError,
    Prediction,
)

CLASSIFIERS = hubtransfer.list_backbones(output_kind="classification")


def _classifier_spec(**changes: object) -> BackboneSpec:
    fields: dict[str, object] = {
        "name": "test_classifier",
        "handle": "/models/test",
        "input_size": (224, 224),
        "output_kind": "classification",
        "num_classes": 1001,
        "label_offset": 1,
        "label_set": "imagenet",
    }
    fields.update(changes)
    return BackboneSpec(**fields)  # type: ignore[arg-type]


# Prediction ---------------------------------------------------------------


def test_prediction_is_a_frozen_keyword_only_dataclass() -> None:
    prediction = Prediction(label="cat", index=3, score=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prediction.score = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Prediction("cat", 3, 0.5)  # type: ignore[call-arg]
    assert not hasattr(prediction, "__dict__")


# Construction and validation ----------------------------------------------


def test_basic_map() -> None:
    labels = LabelMap(["cat", "dog", "bird"])
    assert labels.classes == ("cat", "dog", "bird")
    assert len(labels) == 3
    assert list(labels) == ["cat", "dog", "bird"]
    assert "dog" in labels and "fish" not in labels and 3 not in labels
    assert labels.index("bird") == 2
    assert labels.name(1) == "dog"
    assert labels.offset == 0 and labels.width == 3 and labels.offset_names == ()
    assert labels.columns == labels.classes
    assert repr(labels) == "LabelMap(['cat', 'dog', 'bird'] (3 classes))"


def test_equality_and_hash() -> None:
    first = LabelMap(["cat", "dog"], display_names={"cat": "Cat"})
    same = LabelMap(("cat", "dog"), display_names={"cat": "Cat"})
    assert first == same and hash(first) == hash(same)
    assert first != LabelMap(["cat", "dog"])
    assert first != LabelMap(["dog", "cat"], display_names={"cat": "Cat"})
    assert LabelMap(["cat"], offset=1) != LabelMap(["cat"])
    assert first != ["cat", "dog"]
    assert len({first, same}) == 1


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["cat", "dog", "cat"], "'cat' appears twice (indexes 0 and 2)"),
        (["cat", ""], "non-empty"),
        (["cat", "   "], "non-empty"),
        (["cat", 7], "Got 7 of type int"),
        (["cat", None], "Got None of type NoneType"),
        ([b"cat"], "Got b'cat' of type bytes"),
        ("cats", "sequence of str"),
        ([], "at least one class name"),
    ],
)
def test_bad_names_raise_label_map_error_naming_the_value(names: object, fragment: str) -> None:
    with pytest.raises(LabelMapError) as info:
        LabelMap(names)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_numpy_strings_become_plain_str() -> None:
    labels = LabelMap(list(np.array(["b", "a"])))
    assert all(type(name) is str for name in labels.classes)
    assert json.dumps(labels.to_json())


@pytest.mark.parametrize("offset", [-1, True, 1.0, "1"])
def test_bad_offset(offset: object) -> None:
    with pytest.raises(InvalidParameterError, match="'offset' parameter of LabelMap"):
        LabelMap(["cat"], offset=offset)  # type: ignore[arg-type]


def test_offset_names() -> None:
    labels = LabelMap(["cat", "dog"], offset=2)
    assert labels.offset_names == ("<column 0>", "<column 1>")
    named = LabelMap(["cat"], offset=1, offset_names=["none"])
    assert named.columns == ("none", "cat")
    with pytest.raises(LabelMapError, match="each of the 1 offset column"):
        LabelMap(["cat"], offset=1, offset_names=["a", "b"])
    with pytest.raises(LabelMapError, match="'cat' appears twice"):
        LabelMap(["cat"], offset=1, offset_names=["cat"])


def test_display_names() -> None:
    labels = LabelMap(["n1", "n2"], display_names={"n1": "tabby cat"})
    assert labels.display_name("n1") == "tabby cat"
    assert labels.display_name("n2") == "n2"
    assert labels.display_names == {"n1": "tabby cat"}
    labels.display_names["n2"] = "changed"  # a copy: the map stays unchanged
    assert labels.display_name("n2") == "n2"
    with pytest.raises(LabelMapError, match="'n3', which is not a label"):
        LabelMap(["n1"], display_names={"n3": "x"})
    with pytest.raises(LabelMapError, match="display name"):
        LabelMap(["n1"], display_names={"n1": ""})
    with pytest.raises(LabelMapError, match="Unknown label 'n9'"):
        labels.display_name("n9")


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(LabelMapError, match="Did you mean 'tabby'") as info:
        LabelMap.imagenet().index("tabbby")
    assert "1000 classes" in str(info.value)
    with pytest.raises(LabelMapError, match="Unknown label 3"):
        LabelMap(["a"]).index(3)  # type: ignore[arg-type]


def test_name_range() -> None:
    labels = LabelMap(["a", "b"], offset=1, offset_names=["background"])
    assert labels.name(np.int64(1)) == "b"
    assert labels.name(-1) == "background"
    assert labels.index("background") == -1
    assert "background" not in labels
    for bad in (2, -2):
        with pytest.raises(LabelMapError, match=f"Class index {bad} is out of range"):
            labels.name(bad)
    with pytest.raises(LabelMapError, match="must be an int"):
        labels.name("0")  # type: ignore[arg-type]
    with pytest.raises(LabelMapError, match="out of range"):
        LabelMap(["a"]).name(-1)


def test_pickle_round_trip() -> None:
    labels = LabelMap(["a", "b"], display_names={"a": "A"}, offset=1)
    assert pickle.loads(pickle.dumps(labels)) == labels


# ImageNet and backbones -----------------------------------------------------


def test_imagenet_with_background() -> None:
    labels = LabelMap.imagenet()
    assert len(labels) == 1000
    assert labels.offset == 1 and labels.width == 1001
    assert labels.offset_names == ("background",)
    assert labels.columns[:3] == ("background", "tench", "goldfish")
    assert labels.classes[0] == "tench" and labels.classes[-1] == "toilet tissue"
    assert labels.index("tiger cat") == 282
    assert len(set(labels.columns)) == 1001


def test_imagenet_without_background() -> None:
    labels = LabelMap.imagenet(background=False)
    assert len(labels) == 1000 and labels.offset == 0 and labels.width == 1000
    assert labels.classes == LabelMap.imagenet().classes
    assert "background" not in labels


def test_imagenet_duplicate_synset_names_are_disambiguated() -> None:
    labels = LabelMap.imagenet(background=False)
    assert labels.name(134) == "crane (bird)"
    assert labels.name(517) == "crane (machine)"
    assert labels.name(638) == "maillot"
    assert labels.name(639) == "maillot (tank suit)"
    packaged = (Path(hubtransfer.__file__).parent / "data" / "ImageNetLabels.txt").read_text()
    lines = packaged.splitlines()[1:]
    renamed = [i for i, (a, b) in enumerate(zip(lines, labels.classes, strict=True)) if a != b]
    assert renamed == [134, 517, 639]


def test_for_backbone_imagenet_widths() -> None:
    assert LabelMap.for_backbone(_classifier_spec()) == LabelMap.imagenet()
    thousand = _classifier_spec(num_classes=1000, label_offset=0)
    assert LabelMap.for_backbone(thousand) == LabelMap.imagenet(background=False)


@pytest.mark.parametrize("spec", CLASSIFIERS, ids=lambda spec: spec.name)
def test_for_backbone_matches_every_builtin_classifier(spec: BackboneSpec) -> None:
    if spec.label_set != "imagenet":
        with pytest.raises(LabelMapError, match=spec.name):
            LabelMap.for_backbone(spec)
        return
    labels = LabelMap.for_backbone(spec)
    assert labels.width == spec.num_classes
    assert labels.offset == spec.label_offset


def test_for_backbone_errors() -> None:
    with pytest.raises(LabelMapError, match=r"'big21k'.*imagenet21k.*Pass a LabelMap"):
        LabelMap.for_backbone(
            _classifier_spec(
                name="big21k", num_classes=21843, label_offset=0, label_set="imagenet21k"
            )
        )
    with pytest.raises(LabelMapError, match="'odd'"):
        LabelMap.for_backbone(_classifier_spec(name="odd", label_offset=0))
    with pytest.raises(LabelMapError, match="'none_set'"):
        LabelMap.for_backbone(_classifier_spec(name="none_set", label_set=None))
    feature_vector = BackboneSpec(
        name="my_fv",
        handle="/models/fv",
        input_size=(224, 224),
        output_kind="feature_vector",
        feature_dim=1280,
    )
    with pytest.raises(LabelMapError, match="'my_fv' outputs feature vectors"):
        LabelMap.for_backbone(feature_vector)
    with pytest.raises(InvalidParameterError, match="must be a BackboneSpec"):
        LabelMap.for_backbone("mobilenet")  # type: ignore[arg-type]


# Folders --------------------------------------------------------------------


def test_from_folder(tmp_path: Path) -> None:
    for name in ("dogs", "Cats", "birds", ".hidden", "émeu"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("not a class")
    assert LabelMap.from_folder(tmp_path).classes == ("Cats", "birds", "dogs", "émeu")
    assert LabelMap.from_folder(str(tmp_path)) == LabelMap.from_folder(tmp_path)


def test_from_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(LabelMapError, match="has no sub-folders"):
        LabelMap.from_folder(tmp_path)
    (tmp_path / ".git").mkdir()
    with pytest.raises(LabelMapError, match="has no sub-folders"):
        LabelMap.from_folder(tmp_path)
    with pytest.raises(LabelMapError, match="is not a folder"):
        LabelMap.from_folder(tmp_path / "missing")


# top_k ------------------------------------------------------------------------


def test_top_k_single_row_and_batch() -> None:
    labels = LabelMap(["a", "b", "c", "d"])
    assert labels.top_k([0.1, 0.4, 0.3, 0.2], k=2) == [
        [Prediction(label="b", index=1, score=0.4), Prediction(label="c", index=2, score=0.3)]
    ]
    batch = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]], np.float32)
    assert [[p.label for p in row] for row in labels.top_k(batch, k=1)] == [["a"], ["d"]]
    assert labels.top_k(np.zeros((0, 4)), k=2) == []


def test_top_k_clamps_k_and_breaks_ties_by_column() -> None:
    labels = LabelMap(["a", "b", "c"])
    [row] = labels.top_k([1, 1, 1])
    assert [p.label for p in row] == ["a", "b", "c"]
    assert all(isinstance(p.score, float) for p in row)


def test_top_k_accepts_logits_and_tensors() -> None:
    import tensorflow as tf

    labels = LabelMap(["a", "b"])
    [row] = labels.top_k(tf.constant([[-3.0, 2.5]]), k=2)
    assert [(p.label, p.score) for p in row] == [("b", 2.5), ("a", -3.0)]
    [row] = labels.top_k([-np.inf, np.inf], k=1)
    assert row[0].label == "b"


def test_top_k_offset_columns() -> None:
    labels = LabelMap.imagenet()
    logits = np.zeros(1001, np.float32)
    logits[[0, 1, 2]] = [9.0, 5.0, 3.0]
    [row] = labels.top_k(logits, k=2)
    assert [(p.label, p.index) for p in row] == [("tench", 0), ("goldfish", 1)]
    [row] = labels.top_k(logits, k=2, include_offset_columns=True)
    assert [(p.label, p.index) for p in row] == [("background", -1), ("tench", 0)]
    assert labels.name(row[0].index) == "background"
    [row] = labels.top_k(logits, k=5000)
    assert len(row) == 1000
    [row] = labels.top_k(logits, k=5000, include_offset_columns=True)
    assert len(row) == 1001


def test_top_k_width_mismatch_names_both_numbers() -> None:
    with pytest.raises(LabelMapError, match="1000 columns but this LabelMap expects 1001"):
        LabelMap.imagenet().top_k(np.zeros((2, 1000)))
    with pytest.raises(LabelMapError, match=r"1001 columns.*expects 1000.*LabelMap.imagenet\(\)"):
        LabelMap.imagenet(background=False).top_k(np.zeros(1001))
    with pytest.raises(LabelMapError, match="3 columns but this LabelMap expects 2"):
        LabelMap(["a", "b"]).top_k([1, 2, 3])


@pytest.mark.parametrize("k", [0, -1, True, 1.5, "3"])
def test_top_k_bad_k(k: object) -> None:
    with pytest.raises(InvalidParameterError, match=r"'k' parameter of LabelMap\.top_k"):
        LabelMap(["a"]).top_k([1.0], k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scores", "fragment"),
    [
        ([["x", "y"]], "must be numbers"),
        ([True, False], "must be numbers"),
        (np.zeros((1, 1, 2)), "must be [n, 2] or [2]"),
        (5.0, "must be [n, 2] or [2]"),
        ([[0.1, np.nan]], "NaN (first in row 0)"),
    ],
)
def test_top_k_bad_scores(scores: object, fragment: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        LabelMap(["a", "b"]).top_k(scores)  # type: ignore[arg-type]
    assert fragment in str(info.value)


# JSON -------------------------------------------------------------------------


def test_json_round_trip_and_format() -> None:
    labels = LabelMap(["a", "b"], display_names={"b": "Bee"}, offset=1, offset_names=["bg"])
    data = labels.to_json()
    assert data == {
        "format": "hubtransfer.LabelMap",
        "version": 1,
        "classes": ["a", "b"],
        "offset": 1,
        "offset_names": ["bg"],
        "display_names": {"b": "Bee"},
    }
    assert LabelMap.from_json(json.loads(json.dumps(data))) == labels
    assert LabelMap.from_json({"classes": ["a"]}) == LabelMap(["a"])


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([1, 2], "expected the output of LabelMap.to_json()"),
        ({"names": ["a"]}, "a 'classes' list"),
        ({"classes": ["a"], "version": 2}, "version 2"),
        ({"classes": ["a"], "format": "other"}, "format 'other'"),
        ({"classes": ["a", "a"]}, "appears twice"),
        ({"classes": ["a"], "offset": -1}, "'offset' parameter"),
    ],
)
def test_from_json_errors(data: object, fragment: str) -> None:
    with pytest.raises(LabelMapError) as info:
        LabelMap.from_json(data)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_save_and_load(tmp_path: Path) -> None:
    labels = LabelMap(["猫", "chien", "🐦"], display_names={"猫": "cat"})
    path = tmp_path / "labels.json"
    assert labels.save(path) == path
    assert LabelMap.load(path) == labels
    assert LabelMap.load(str(path)) == labels
    assert "猫" in path.read_text(encoding="utf-8")  # readable UTF-8, not \u escapes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]  # no temp files left
    replaced = LabelMap(["x"])
    replaced.save(path)
    assert LabelMap.load(path) == replaced


def test_save_failure_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep").write_text("a non-empty folder cannot be replaced by a file")
    with pytest.raises(OSError):
        LabelMap(["x"]).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LabelMap.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(LabelMapError, match=r"broken\.json.*is not a label map JSON file"):
        LabelMap.load(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"classes": ["a", "a"]}')
    with pytest.raises(LabelMapError, match=r"wrong\.json.*appears twice"):
        LabelMap.load(wrong)


# Properties -------------------------------------------------------------------

label_names = st.text(min_size=1, max_size=20).filter(lambda name: bool(name.strip()))
unique_labels = st.lists(label_names, min_size=1, max_size=30, unique=True)


@given(names=unique_labels, offset=st.integers(0, 3), data=st.data())
def test_json_round_trip_is_exact(names: list[str], offset: int, data: st.DataObject) -> None:
    shown = data.draw(st.dictionaries(st.sampled_from(names), label_names, max_size=3))
    labels = LabelMap(names, display_names=shown, offset=offset)
    text = json.dumps(labels.to_json(), ensure_ascii=False)
    restored = LabelMap.from_json(json.loads(text))
    assert restored == labels
    assert restored.classes == tuple(names)
    assert restored.display_names == shown
    assert restored.offset == offset


@settings(max_examples=25, deadline=None)
@given(names=unique_labels)
def test_save_load_round_trip_is_exact(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        labels = LabelMap(names)
        assert LabelMap.load(labels.save(Path(folder) / "labels.json")) == labels


# Small integers make ties frequent, which exercises the tie-breaking rule.
scores_element = st.one_of(
    st.integers(-3, 3).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, width=32),
)


@given(
    names=st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=4), unique=True, min_size=1),
    offset=st.integers(1, 3),
    rows=st.integers(1, 4),
    k=st.integers(1, 12),
    data=st.data(),
)
def test_top_k_over_an_offset_view_equals_top_k_without_the_offset_columns(
    names: list[str], offset: int, rows: int, k: int, data: st.DataObject
) -> None:
    scores = data.draw(hnp.arrays(np.float32, (rows, offset + len(names)), elements=scores_element))
    with_offset = LabelMap(names, offset=offset).top_k(scores, k=k)
    without = LabelMap(names).top_k(scores[:, offset:], k=k)
    assert with_offset == without


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 3),
    ties=st.booleans(),
    k=st.integers(1, 10),
)
def test_imagenet_1000_view_of_1001_wide_scores(seed: int, rows: int, ties: bool, k: int) -> None:
    # 1001 columns are too many for Hypothesis to draw one by one: it draws a seed.
    rng = np.random.default_rng(seed)
    scores = (
        rng.integers(-2, 3, (rows, 1001)).astype(np.float32)
        if ties
        else rng.normal(size=(rows, 1001)).astype(np.float32)
    )
    tfhub_view = LabelMap.imagenet(background=True).top_k(scores, k=k)
    dropped = LabelMap.imagenet(background=False).top_k(scores[:, 1:], k=k)
    assert tfhub_view == dropped
    assert all(p.label != "background" for row in tfhub_view for p in row)


@given(
    names=st.lists(st.text(alphabet="xyz", min_size=1, max_size=3), unique=True, min_size=1),
    offset=st.integers(0, 2),
    include=st.booleans(),
    k=st.integers(1, 8),
    data=st.data(),
)
def test_top_k_is_sorted_and_consistent(
    names: list[str], offset: int, include: bool, k: int, data: st.DataObject
) -> None:
    labels = LabelMap(names, offset=offset)
    scores = data.draw(hnp.arrays(np.float64, (3, labels.width), elements=scores_element))
    result = labels.top_k(scores, k=k, include_offset_columns=include)
    candidates = labels.width if include else len(labels)
    for row, predictions in enumerate(result):
        assert len(predictions) == min(k, candidates)
        values = [p.score for p in predictions]
        assert values == sorted(values, reverse=True)
        assert len({p.index for p in predictions}) == len(predictions)
        for prediction in predictions:
            assert labels.name(prediction.index) == prediction.label
            assert scores[row, prediction.index + labels.offset] == prediction.score
            assert include or prediction.index >= 0
        # Nothing left out beats the worst prediction returned.
        chosen = {p.index + labels.offset for p in predictions}
        first = 0 if include else labels.offset
        rest = [scores[row, c] for c in range(first, labels.width) if c not in chosen]
        assert all(value <= values[-1] for value in rest)
