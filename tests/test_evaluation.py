"""Evaluation reports, by hand on a small case and against scikit-learn on random ones."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hubtransfer
from hubtransfer import EvaluationReport, evaluation_report

# Seven images of three classes. The top class per row is marked *, the second †.
_TRUE = [0, 0, 0, 1, 1, 2, 2]
_PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1],  # a: a*, b†
        [0.6, 0.1, 0.3],  # a: a*, c†
        [0.2, 0.5, 0.3],  # a: b*, c†  (wrong, and not in the top 2)
        [0.1, 0.8, 0.1],  # b: b*
        [0.5, 0.4, 0.1],  # b: a*, b†  (wrong, but in the top 2)
        [0.1, 0.2, 0.7],  # c: c*
        [0.3, 0.3, 0.4],  # c: c*
    ]
)


@pytest.fixture
def report() -> EvaluationReport:
    return evaluation_report(_TRUE, _PROBABILITIES, ["a", "b", "c"], top_k=(1, 2, 5))


def test_a_small_case_by_hand(report: EvaluationReport) -> None:
    assert report.classes == ("a", "b", "c")
    assert report.n_samples == 7
    #                 predicted: a  b  c
    expected_matrix = [[2, 1, 0], [1, 1, 0], [0, 0, 2]]
    assert report.confusion_matrix.tolist() == expected_matrix
    assert report.confusion_matrix.dtype == np.int64
    assert report.accuracy == pytest.approx(5 / 7)
    # Top-2 misses only the third row; top-5 is not reported for 3 classes.
    assert report.top_k_accuracy == {1: pytest.approx(5 / 7), 2: pytest.approx(6 / 7)}

    a, b, c = report.per_class
    assert (a.label, a.precision, a.recall, a.support) == ("a", pytest.approx(2 / 3), 2 / 3, 3)
    assert a.f1 == pytest.approx(2 / 3)
    assert (b.label, b.precision, b.recall, b.support) == ("b", 0.5, 0.5, 2)
    assert b.f1 == pytest.approx(0.5)
    assert (c.label, c.precision, c.recall, c.f1, c.support) == ("c", 1.0, 1.0, 1.0, 2)
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)


def test_a_class_never_predicted_nor_present_scores_zero() -> None:
    report = evaluation_report([0, 0], [[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]], ["x", "y", "z"])
    x, y, z = report.per_class
    assert (x.precision, x.recall, x.f1, x.support) == (1.0, 1.0, 1.0, 2)
    assert (y.precision, y.recall, y.f1, y.support) == (0.0, 0.0, 0.0, 0)
    assert (z.precision, z.recall, z.f1, z.support) == (0.0, 0.0, 0.0, 0)


def test_to_json_is_json_serialisable(report: EvaluationReport) -> None:
    data = json.loads(json.dumps(report.to_json()))
    assert data["n_samples"] == 7
    assert data["accuracy"] == pytest.approx(5 / 7)
    assert data["macro_f1"] == pytest.approx(report.macro_f1)
    assert data["top_k_accuracy"] == {"1": pytest.approx(5 / 7), "2": pytest.approx(6 / 7)}
    assert data["classes"] == ["a", "b", "c"]
    assert data["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 2]]
    assert data["per_class"][1] == {
        "label": "b",
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }


def test_format_lists_every_class(report: EvaluationReport) -> None:
    text = report.format()
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert lines[1].split() == ["a", "0.667", "0.667", "0.667", "3"]
    assert "accuracy 0.7143 on 7 images" in text
    assert "top-2 accuracy 0.8571" in text


def test_no_samples() -> None:
    report = evaluation_report([], np.zeros((0, 2)), ["a", "b"])
    assert report.n_samples == 0
    assert report.accuracy == 0.0
    assert report.confusion_matrix.tolist() == [[0, 0], [0, 0]]
    assert report.macro_f1 == 0.0
    json.dumps(report.to_json())


@pytest.mark.parametrize(
    ("true", "probabilities", "top_k", "message"),
    [
        ([0, 1], [[0.5, 0.5]], (1,), "needs probabilities shaped (2, 2); got (1, 2)."),
        ([0, 1], [0.5, 0.5], (1,), "needs probabilities shaped (2, 2); got (2,)."),
        ([0, 1], [[1, 0, 0], [0, 1, 0]], (1,), "needs probabilities shaped (2, 2); got (2, 3)."),
        ([[0], [1]], [[1, 0], [0, 1]], (1,), "needs true labels shaped [n]; got (2, 1)."),
        ([0, -1], [[1, 0], [0, 1]], (1,), "got the true label -1, outside the 2 classes"),
        ([0, 2], [[1, 0], [0, 1]], (1,), "got the true label 2, outside the 2 classes (labels"),
        ([0, 1], [[1, 0], [0, 1]], (0,), "a sequence of positive ints, such as (1, 5). Got (0,)"),
        ([0, 1], [[1, 0], [0, 1]], "5", "a sequence of positive ints, such as (1, 5). Got '5'"),
        ([0, 1], [[1, 0], [0, 1]], 5, "a sequence of positive ints, such as (1, 5). Got 5 "),
        ([0, 1], [[1, 0], [0, 1]], (True,), "a sequence of positive ints, such as (1, 5). Got"),
    ],
    ids=[
        "rows",
        "rank",
        "columns",
        "label-rank",
        "negative-label",
        "large-label",
        "top-0",
        "top-str",
        "top-int",
        "top-bool",
    ],
)
def test_bad_input(true: object, probabilities: object, top_k: tuple[int], message: str) -> None:
    with pytest.raises(hubtransfer.InvalidParameterError, match=re.escape(message)):
        evaluation_report(true, probabilities, ["a", "b"], top_k=top_k)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    n_classes=st.integers(3, 7),
    n_samples=st.integers(1, 80),
    seed=st.integers(0, 2**32 - 1),
    skewed=st.booleans(),
)
def test_agrees_with_scikit_learn(n_classes: int, n_samples: int, seed: int, skewed: bool) -> None:
    from sklearn import metrics

    rng = np.random.default_rng(seed)
    # Skewed data leaves some classes absent or never predicted: the zero_division cases.
    weights = rng.dirichlet(np.full(n_classes, 0.3 if skewed else 5.0))
    true = rng.choice(n_classes, size=n_samples, p=weights)
    probabilities = rng.dirichlet(np.ones(n_classes), size=n_samples)
    labels = list(range(n_classes))
    classes = [f"class {i}" for i in labels]
    report = evaluation_report(true, probabilities, classes, top_k=range(1, n_classes))

    predicted = probabilities.argmax(axis=1)
    np.testing.assert_array_equal(
        report.confusion_matrix, metrics.confusion_matrix(true, predicted, labels=labels)
    )
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    np.testing.assert_allclose([m.precision for m in report.per_class], precision, atol=1e-12)
    np.testing.assert_allclose([m.recall for m in report.per_class], recall, atol=1e-12)
    np.testing.assert_allclose([m.f1 for m in report.per_class], f1, atol=1e-12)
    assert [m.support for m in report.per_class] == support.tolist()
    assert report.accuracy == pytest.approx(metrics.accuracy_score(true, predicted))
    assert report.macro_f1 == pytest.approx(
        metrics.f1_score(true, predicted, labels=labels, average="macro", zero_division=0)
    )
    assert sorted(report.top_k_accuracy) == list(range(1, n_classes))
    for k, value in report.top_k_accuracy.items():
        expected = metrics.top_k_accuracy_score(true, probabilities, k=k, labels=labels)
        assert value == pytest.approx(expected), k
