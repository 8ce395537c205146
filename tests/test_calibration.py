"""Calibration: temperature scaling, calibration error, and answering "unknown".

Synthetic logits check the arithmetic; one end-to-end test trains the tiny
backbone on three colours and shows that grey images, a colour it never saw,
mostly come out "unknown" while the colours it knows keep their class.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from hubtransfer import InvalidParameterError, TransferClassifier
from hubtransfer._calibration import (
    CalibrationReport,
    apply_temperature,
    calibration_report,
    confidence_threshold,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_curve,
    with_unknown,
)
from hubtransfer.testing import tiny_spec


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def synthetic(
    true_temperature: float, *, n: int = 4000, classes: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Logits, and labels drawn from softmax(logits / true_temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 3.0, (n, classes))
    cumulative = softmax(logits / true_temperature).cumsum(axis=1)
    labels = (rng.uniform(size=(n, 1)) > cumulative).sum(axis=1)
    return logits, np.minimum(labels, classes - 1)


# --- Temperature scaling ----------------------------------------------------------------------


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
@pytest.mark.parametrize("smoothing", [True, False])
def test_fit_temperature_recovers_a_known_temperature(
    true_temperature: float, smoothing: bool
) -> None:
    logits, labels = synthetic(true_temperature)
    from_logits = fit_temperature(logits, labels, kind="logits", smoothing=smoothing)
    assert from_logits == pytest.approx(true_temperature, rel=0.06)
    # Probabilities in: log p is the logits up to a constant per row, so the same T.
    from_probabilities = fit_temperature(softmax(logits), labels, smoothing=smoothing)
    assert from_probabilities == pytest.approx(from_logits, rel=1e-4)


def test_scaling_an_overconfident_model_lowers_ece_and_nll() -> None:
    logits, labels = synthetic(3.0, n=3000)
    overconfident = softmax(logits)
    report = calibration_report(overconfident, labels)
    print(f"\nover-confident synthetic data: {report.format()}")
    assert report.temperature == pytest.approx(3.0, rel=0.08)
    assert report.ece_before > 0.15
    assert report.ece_after < 0.03
    assert report.nll_after < report.nll_before
    assert report.n_samples == 3000
    assert not report.at_bound
    scaled = apply_temperature(overconfident, report.temperature)
    assert expected_calibration_error(scaled, labels) == pytest.approx(report.ece_after)
    assert negative_log_likelihood(scaled, labels) == pytest.approx(report.nll_after)


def test_smoothing_keeps_perfect_held_out_data_from_the_lower_bound() -> None:
    # Every sample right with a margin: plain NLL falls all the way as T shrinks.
    probabilities = np.array([[0.8, 0.1, 0.1], [0.15, 0.7, 0.15], [0.1, 0.2, 0.7]] * 4)
    labels = np.array([0, 1, 2] * 4)
    plain = calibration_report(probabilities, labels, smoothing=False)
    assert plain.at_bound
    assert plain.temperature == 0.05
    smoothed = calibration_report(probabilities, labels)
    assert not smoothed.at_bound
    # Twelve right answers in a row justify about (12 + 1) / (12 + 2) = 0.93 confidence, not 1.
    confidence = apply_temperature(probabilities, smoothed.temperature).max(axis=1)
    assert 0.88 < confidence.mean() < 0.96


def test_apply_temperature_one_is_the_identity_and_keeps_float32() -> None:
    probabilities = softmax(np.random.default_rng(1).normal(size=(7, 4))).astype(np.float32)
    scaled = apply_temperature(probabilities, 1.0)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, probabilities, atol=1e-6)
    assert apply_temperature(probabilities.astype(np.float64), 2.0).dtype == np.float64


@settings(max_examples=60, deadline=None)
@given(
    logits=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=6),
        elements=st.floats(-30.0, 30.0),
    ),
    temperature=st.floats(min_value=5e-324, max_value=1e300),
)
def test_rows_of_scaled_probabilities_sum_to_one_for_any_temperature(
    logits: np.ndarray, temperature: float
) -> None:
    scaled = apply_temperature(softmax(logits), temperature)
    assert np.all(np.isfinite(scaled))
    assert np.all(scaled >= 0)
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0, rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    logits=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=6),
        elements=st.floats(-30.0, 30.0),
    ),
    temperature=st.floats(min_value=1e-3, max_value=1e3),
)
def test_scaling_keeps_the_most_likely_class(logits: np.ndarray, temperature: float) -> None:
    # Where the top class leads by a margin floats can resolve after scaling by 1/T.
    ordered = np.sort(logits, axis=1)
    assume(np.all(ordered[:, -1] - ordered[:, -2] > 1e-3))
    scaled = apply_temperature(logits, temperature, kind="logits")
    np.testing.assert_array_equal(scaled.argmax(axis=1), logits.argmax(axis=1))
    from_probabilities = apply_temperature(softmax(logits), temperature)
    np.testing.assert_array_equal(from_probabilities.argmax(axis=1), logits.argmax(axis=1))


# --- Measuring calibration --------------------------------------------------------------------


def test_ece_matches_a_hand_computation() -> None:
    probabilities = np.array(
        [
            [0.95, 0.05],  # bin (0.9, 1.0]: right
            [0.05, 0.95],  # bin (0.9, 1.0]: wrong (label 0)
            [0.7, 0.3],  # bin (0.6, 0.7] although 0.7 * 10 > 7 in floats: right
            [0.35, 0.65],  # bin (0.6, 0.7]: right
            [0.5, 0.5],  # bin (0.4, 0.5]: argmax 0, right
        ]
    )
    labels = np.array([0, 0, 0, 1, 0])
    # |1/2 - 0.95| * 2/5 + |1 - 0.675| * 2/5 + |1 - 0.5| * 1/5
    expected = 0.45 * 0.4 + 0.325 * 0.4 + 0.5 * 0.2
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(expected)
    curve = reliability_curve(probabilities, labels, bins=10)
    assert curve.count.tolist() == [0, 0, 0, 0, 1, 0, 2, 0, 0, 2]
    np.testing.assert_allclose(curve.confidence[[4, 6, 9]], [0.5, 0.675, 0.95])
    np.testing.assert_allclose(curve.accuracy[[4, 6, 9]], [1.0, 1.0, 0.5])
    assert np.isnan(curve.confidence[0]) and np.isnan(curve.accuracy[0])
    assert curve.n_samples == 5
    np.testing.assert_allclose(curve.bin_edges, np.linspace(0, 1, 11))
    as_json = json.loads(json.dumps(curve.to_json()))
    assert as_json["count"] == curve.count.tolist()
    assert as_json["accuracy"][0] is None
    # One bin: |accuracy - mean confidence| over everything.
    one_bin = abs(0.8 - probabilities.max(axis=1).mean())
    assert expected_calibration_error(probabilities, labels, bins=1) == pytest.approx(one_bin)


def test_a_perfectly_calibrated_bin_has_no_error() -> None:
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, [0, 0, 0, 1]) == pytest.approx(0.0)
    assert expected_calibration_error(np.zeros((0, 2)), np.zeros(0, np.int64)) == 0.0


def test_calibration_report_round_trips_through_json() -> None:
    logits, labels = synthetic(2.0, n=500)
    report = calibration_report(softmax(logits), labels, bins=10)
    text = json.dumps(report.to_json())
    assert CalibrationReport.from_json(json.loads(text)) == report
    assert report.bins == 10
    assert "temperature" in report.format()
    with pytest.raises(InvalidParameterError, match="Cannot read a calibration report"):
        CalibrationReport.from_json({"temperature": 1.0})


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fit_temperature(np.ones((3, 2)) / 2, [0, 1, 2]), r"\[0, 1\]"),
        (lambda: fit_temperature(np.ones((3, 2)) / 2, [0, 1]), r"shape \(3,\)"),
        (lambda: fit_temperature(np.zeros((0, 2)), []), "at least one sample"),
        (lambda: fit_temperature([[2.0, 3.0]], [0], kind="odds"), "'odds'"),  # type: ignore[arg-type]
        (lambda: fit_temperature([[2.0, 3.0]], [0], kind="probabilities"), "softmax"),
        (lambda: fit_temperature([[0.5, 0.5]], [0], bounds=(2.0, 1.0)), r"\(2.0, 1.0\)"),
        (lambda: fit_temperature([[np.nan, 0.5]], [0]), "NaN"),
        (lambda: apply_temperature([[0.5, 0.5]], 0.0), "Got 0.0"),
        (lambda: apply_temperature([[0.5, 0.5]], math.inf), "Got inf"),
        (lambda: expected_calibration_error([[0.5, 0.5]], [0], bins=0), "'bins'.*Got 0"),
        (lambda: expected_calibration_error([0.5, 0.5], [0]), r"shape \(2,\)"),
        (lambda: reliability_curve([[3.0, -1.0]], [0]), "probabilities"),
    ],
)
def test_bad_inputs_are_named(call: object, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        call()  # type: ignore[operator]


# --- Unknown ----------------------------------------------------------------------------------


def test_with_unknown_replaces_unlikely_answers() -> None:
    probabilities = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.1, 0.6, 0.3]])
    classes = ["cat", "dog", "fox"]
    assert with_unknown(probabilities, classes, min_confidence=0.5).tolist() == [
        "cat",
        "unknown",
        "dog",
    ]
    # At exactly min_confidence the answer stands; 0 keeps everything.
    assert with_unknown(probabilities, classes, min_confidence=0.6).tolist()[2] == "dog"
    assert "unknown" not in with_unknown(probabilities, classes, min_confidence=0.0).tolist()
    answers = with_unknown(
        probabilities, np.asarray(classes), min_confidence=1.0, unknown_label="?"
    )
    assert answers.tolist() == ["?", "?", "?"]
    assert answers.dtype.kind == "U"
    assert with_unknown(np.zeros((0, 3)), classes, min_confidence=0.5).shape == (0,)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"min_confidence": 1.5}, "'min_confidence'.*Got 1.5"),
        ({"min_confidence": -0.1}, "Got -0.1"),
        ({"min_confidence": 0.5, "unknown_label": "dog"}, "'dog'.*also a class"),
        ({"min_confidence": 0.5, "unknown_label": " "}, "non-empty"),
    ],
)
def test_with_unknown_rejects_bad_options(options: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        with_unknown(np.array([[0.5, 0.5]]), ["cat", "dog"], **options)  # type: ignore[arg-type]


def test_with_unknown_needs_one_class_per_column() -> None:
    with pytest.raises(InvalidParameterError, match="3 columns for 2 classes"):
        with_unknown(np.ones((1, 3)) / 3, ["cat", "dog"], min_confidence=0.5)


def test_confidence_threshold_keeps_a_share_of_the_right_answers() -> None:
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    labels = [0, 0, 1, 1, 0]  # rows 3 and 4 are wrong
    assert confidence_threshold(probabilities, labels, keep=1.0) == 0.7
    assert confidence_threshold(probabilities, labels, keep=0.34) == 0.8
    with pytest.raises(InvalidParameterError, match=r"'keep'.*Got 0"):
        confidence_threshold(probabilities, labels, keep=0)
    with pytest.raises(InvalidParameterError, match="no correctly classified"):
        confidence_threshold(probabilities, [1, 1, 0, 1, 0])


# --- End to end: a colour the classifier never saw --------------------------------------------

KNOWN = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
GREY = (128, 128, 128)


def write_colour_images(folder: Path, colour: tuple[int, int, int], count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        noise = rng.normal(0.0, 25.0, (32, 32, 3))
        pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:02d}.png")


def test_a_colour_never_seen_becomes_unknown(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    for offset, (name, colour) in enumerate(KNOWN.items()):
        write_colour_images(tmp_path / "train" / name, colour, 20, seed=offset)
        write_colour_images(tmp_path / "test" / name, colour, 10, seed=10 + offset)
    write_colour_images(tmp_path / "grey", GREY, 20, seed=20)
    model = TransferClassifier(
        backbone=tiny_spec(tiny_models["fv"]),
        epochs=30,
        learning_rate=0.3,
        batch_size=8,
        validation_split=0.3,
        verbose=0,
    ).fit(tmp_path / "train")
    # Calibrate and choose the confidence floor on the held-out split only.
    assert model.split_ is not None
    held_out = model.predict_proba(list(model.split_.validation.paths))
    held_out_labels = np.asarray(model.split_.validation.labels)
    report = calibration_report(held_out, held_out_labels)
    calibrated = apply_temperature(held_out, report.temperature)
    floor = confidence_threshold(calibrated, held_out_labels, keep=0.95)

    seen = with_unknown(
        apply_temperature(model.predict_proba(tmp_path / "test"), report.temperature),
        model.classes_,
        min_confidence=floor,
    )
    grey = with_unknown(
        apply_temperature(model.predict_proba(tmp_path / "grey"), report.temperature),
        model.classes_,
        min_confidence=floor,
    )
    truth = np.repeat(sorted(KNOWN), 10)
    kept_right = float((seen == truth).mean())
    grey_unknown = float((grey == "unknown").mean())
    print(
        f"\n{report.format()}; floor {floor:.3f}: {kept_right:.0%} of known colours keep "
        f"their class, {grey_unknown:.0%} of grey images are unknown"
    )
    assert kept_right >= 0.8
    assert grey_unknown >= 0.8
    # Without the floor, every grey image would be called red, green or blue.
    assert set(model.predict(tmp_path / "grey").tolist()) <= set(KNOWN)
