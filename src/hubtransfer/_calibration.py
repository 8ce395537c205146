"""Calibrated confidence: temperature scaling, calibration error, and "unknown".

A classifier answers with one of its classes even for an image that belongs
to none, and a softmax head is usually over-confident. This module gives the
two tools that make its confidence usable:

* **Temperature scaling** (Guo et al., "On Calibration of Modern Neural
  Networks", 2017): divide the logits by one scalar ``T`` fitted on held-out
  data by minimising the negative log-likelihood (NLL). ``T > 1`` softens
  over-confident probabilities, ``T < 1`` sharpens under-confident ones. The
  predicted class never changes.
* **A confidence floor**: :func:`with_unknown` answers ``"unknown"`` where
  the top probability is below ``min_confidence``;
  :func:`confidence_threshold` picks that floor from validation data.

Probabilities in, probabilities out: the head ends in a softmax, so these
functions work from log-probabilities. ``log p = z - logsumexp(z)`` equals the
logits ``z`` up to a constant per row, and ``softmax((z + c) / T) =
softmax(z / T)``, so scaling log-probabilities is exactly scaling logits.
Probabilities that underflowed to 0 are taken as the smallest normal float32
(about ``1.2e-38``) so that their logarithm is finite.

Calibration is measured by the top-label expected calibration error (ECE):
the confidences (top probabilities) are put in ``bins`` equal-width bins over
``[0, 1]`` (bin ``i`` holds ``i / bins < confidence <= (i + 1) / bins``; a
confidence of exactly 0 goes to the first bin), and
``ECE = sum over bins of count / n * |accuracy - mean confidence|``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ._exceptions import InvalidParameterError

__all__ = [
    "CalibrationReport",
    "ReliabilityCurve",
    "ScoreKind",
    "apply_temperature",
    "calibration_report",
    "confidence_threshold",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "reliability_curve",
    "with_unknown",
]

ScoreKind = Literal["auto", "probabilities", "logits"]
_KINDS: Final = ("auto", "probabilities", "logits")

DEFAULT_BINS: Final = 15
DEFAULT_BOUNDS: Final = (0.05, 20.0)
"""Temperatures searched by :func:`fit_temperature`: softening up to 20x, sharpening up to 20x."""

_SMALLEST_PROBABILITY: Final = float(np.finfo(np.float32).tiny)
_SUM_TOLERANCE: Final = 1e-3
_GOLDEN: Final = (math.sqrt(5.0) - 1.0) / 2.0
_LOG_T_TOLERANCE: Final = 1e-7
_MAX_ITERATIONS: Final = 200


# --- Checking inputs --------------------------------------------------------------------------


def _scores(values: npt.ArrayLike, where: str) -> npt.NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidParameterError(
            f"{where} needs a numeric [n, n_classes] array; got {type(values).__name__} ({error})."
        ) from error
    if array.ndim != 2 or array.shape[1] < 2:
        raise InvalidParameterError(
            f"{where} needs scores shaped [n, n_classes] with at least 2 classes; got shape "
            f"{array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise InvalidParameterError(
            f"{where} got NaN or infinite scores; pass finite probabilities or logits."
        )
    return array


def _probabilities(values: npt.ArrayLike, where: str) -> npt.NDArray[np.float64]:
    array = _scores(values, where)
    if not _looks_like_probabilities(array):
        raise InvalidParameterError(
            f"{where} needs probabilities: rows of values in [0, 1] that sum to 1. Got values "
            f"in [{array.min():.3g}, {array.max():.3g}] with row sums up to "
            f"{np.abs(array.sum(axis=1) - 1).max() + 1:.3g}; apply a softmax to logits first."
        )
    return array


def _looks_like_probabilities(array: npt.NDArray[np.float64]) -> bool:
    if not len(array):
        return True
    return bool(
        array.min() >= 0.0
        and array.max() <= 1.0 + _SUM_TOLERANCE
        and np.all(np.abs(array.sum(axis=1) - 1.0) <= _SUM_TOLERANCE)
    )


def _labels(values: npt.ArrayLike, n_samples: int, n_classes: int, where: str) -> Any:
    array = np.asarray(values)
    if array.shape != (n_samples,):
        raise InvalidParameterError(
            f"{where} needs one label per row: shape ({n_samples},); got {array.shape}."
        )
    if n_samples and (
        not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() >= n_classes
    ):
        raise InvalidParameterError(
            f"{where} needs integer class indexes in [0, {n_classes - 1}]; got "
            f"{array.dtype} values {np.unique(array)[:10].tolist()!r}."
        )
    return array.astype(np.int64)


def _bins(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(
            f"The 'bins' parameter of {where} must be a positive int. Got {value!r} instead."
        )
    return int(value)


def _temperature(value: object, where: str) -> float:
    number = (
        float(value)
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        else math.nan
    )
    if not (math.isfinite(number) and number > 0):
        raise InvalidParameterError(
            f"The 'temperature' parameter of {where} must be a finite float > 0. Got {value!r} "
            "instead; fit one with hubtransfer.fit_temperature."
        )
    return number


def _log_scores(values: npt.ArrayLike, kind: ScoreKind, where: str) -> npt.NDArray[np.float64]:
    """Logits, or log-probabilities (logits up to a constant per row)."""
    if kind not in _KINDS:
        raise InvalidParameterError(
            f"The 'kind' parameter of {where} must be one of {_KINDS}. Got {kind!r} instead."
        )
    array = _scores(values, where)
    is_probabilities = kind == "probabilities" or (
        kind == "auto" and _looks_like_probabilities(array)
    )
    if kind == "probabilities" and not _looks_like_probabilities(array):
        array = _probabilities(array, where)  # raises, naming the problem
    if is_probabilities:
        return np.log(np.maximum(array, _SMALLEST_PROBABILITY))
    return array


def _log_softmax(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    result: npt.NDArray[np.float64] = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


def _target_logits(
    logits: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], *, smoothing: bool
) -> npt.NDArray[np.float64]:
    """Per sample, the targets' weighted sum of the logits: ``sum_j t_j z_j``."""
    rows = np.arange(len(labels))
    true = logits[rows, labels]
    if not smoothing:
        return true
    # Laplace's rule of succession for "the answer is right" over n held-out samples.
    n = float(len(labels))
    others = (logits.sum(axis=1) - true) / (logits.shape[1] - 1)
    result: npt.NDArray[np.float64] = ((n + 1.0) * true + others) / (n + 2.0)
    return result


def _cross_entropy(
    logits: npt.NDArray[np.float64], target_logits: npt.NDArray[np.float64], temperature: float
) -> float:
    """Mean cross-entropy of ``softmax(z / T)`` against targets that sum to 1."""
    scaled = logits / temperature
    peak = scaled.max(axis=1)
    log_sum = peak + np.log(np.exp(scaled - peak[:, None]).sum(axis=1))
    return float((log_sum - target_logits / temperature).mean())


# --- Temperature scaling ----------------------------------------------------------------------


def fit_temperature(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    kind: ScoreKind = "auto",
    bounds: tuple[float, float] = DEFAULT_BOUNDS,
    smoothing: bool = True,
) -> float:
    """Fits the temperature that minimises the NLL of held-out data.

    The cross-entropy of ``softmax(z / T)`` is convex in ``1 / T``, so it has
    one minimum along ``log T``, found by golden-section search within
    ``bounds`` (numpy only).

    With ``smoothing`` the targets are Platt's out-of-sample targets (Platt
    1999, as in scikit-learn's sigmoid calibration), by Laplace's rule of
    succession for "the top answer is right": with ``n`` held-out samples
    the true class has target ``(n + 1) / (n + 2)`` instead of 1 and the
    other classes share the rest. With hundreds of samples this is plain
    NLL minimisation (Guo et al.). With few, and above all when every
    held-out sample is already right with a margin, plain NLL has no
    minimum (it keeps falling as ``T → 0``) and returns the lower bound,
    turning every probability into 0 or 1; the smoothed targets stop where
    ``n`` right answers in a row justify it.

    Args:
        scores: ``[n, n_classes]`` probabilities or logits of held-out data
            (not the training data: a head fits its training data too well).
        labels: ``[n]`` true class indexes.
        kind: ``"probabilities"``, ``"logits"``, or ``"auto"``:
            probabilities when every row is in ``[0, 1]`` and sums to 1.
        bounds: ``(lowest, highest)`` temperature considered.
        smoothing: Whether to use the out-of-sample targets (see above)
            rather than one-hot targets.

    Returns:
        The temperature ``T > 0``; divide logits by it (or pass it to
        :func:`apply_temperature`).

    Raises:
        InvalidParameterError: For scores or labels of the wrong shape,
            type or range, no samples, or bad bounds.

    Example:
        >>> import numpy as np, hubtransfer
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(0.0, 3.0, (4000, 5))
        >>> labels = np.array([rng.choice(5, p=p) for p in
        ...     hubtransfer.apply_temperature(logits, 2.0, kind="logits")])
        >>> temperature = hubtransfer.fit_temperature(logits, labels, kind="logits")
        >>> 1.8 < temperature < 2.2
        True
    """
    where = "fit_temperature"
    logits = _log_scores(scores, kind, where)
    truth = _labels(labels, len(logits), logits.shape[1], where)
    if not len(logits):
        raise InvalidParameterError(
            "fit_temperature needs at least one sample; got none. Fit on the validation split."
        )
    if not isinstance(smoothing, bool):
        raise InvalidParameterError(
            f"The 'smoothing' parameter of {where} must be a bool. Got {smoothing!r} instead."
        )
    low, high = _bounds(bounds, where)
    targets = _target_logits(logits, truth, smoothing=smoothing)

    def loss(log_temperature: float) -> float:
        return _cross_entropy(logits, targets, math.exp(log_temperature))

    a, b = math.log(low), math.log(high)
    c = b - _GOLDEN * (b - a)
    d = a + _GOLDEN * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(_MAX_ITERATIONS):
        if b - a <= _LOG_T_TOLERANCE:
            break
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = loss(d)
    # Golden-section never evaluates the ends; a minimum there is returned exactly.
    candidates = (math.log(low), (a + b) / 2.0, math.log(high))
    best = candidates[int(np.argmin([loss(t) for t in candidates]))]
    return float(
        low if best == candidates[0] else high if best == candidates[2] else math.exp(best)
    )


def _bounds(bounds: object, where: str) -> tuple[float, float]:
    ok = (
        isinstance(bounds, tuple)
        and len(bounds) == 2
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in bounds
        )
        and bounds[0] < bounds[1]
    )
    if not ok:
        raise InvalidParameterError(
            f"The 'bounds' parameter of {where} must be a (low, high) tuple of finite floats "
            f"with 0 < low < high. Got {bounds!r} instead."
        )
    pair: tuple[float, float] = bounds  # type: ignore[assignment]
    return float(pair[0]), float(pair[1])


def apply_temperature(
    scores: npt.ArrayLike, temperature: float, *, kind: ScoreKind = "auto"
) -> npt.NDArray[np.floating[Any]]:
    """Rescales probabilities (or logits) by a temperature.

    Computes ``softmax(log p / T)`` (``softmax(z / T)`` for logits) in
    float64. The most likely class of every row is unchanged, and ``T = 1``
    returns the probabilities themselves (up to rounding).

    Args:
        scores: ``[n, n_classes]`` probabilities (or logits).
        temperature: ``T > 0`` (from :func:`fit_temperature`).
        kind: As for :func:`fit_temperature`.

    Returns:
        ``[n, n_classes]`` probabilities whose rows sum to 1: float32 for
        float32 input, else float64.

    Example:
        >>> import numpy as np, hubtransfer
        >>> hubtransfer.apply_temperature(np.array([[0.8, 0.2]]), 2.0).round(3)
        array([[0.667, 0.333]])
    """
    where = "apply_temperature"
    value = _temperature(temperature, where)
    logits = _log_scores(scores, kind, where)
    # Shifted before dividing: the top entry stays 0 for any T, so no inf - inf; a tiny T
    # sends the others to -inf, which is their limit (probability 0).
    with np.errstate(over="ignore"):
        shifted = (logits - logits.max(axis=1, keepdims=True)) / value
    result = np.exp(_log_softmax(shifted))
    dtype = np.float32 if np.asarray(scores).dtype == np.float32 else np.float64
    return result.astype(dtype)


# --- Measuring calibration --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReliabilityCurve:
    """Per-bin confidence and accuracy: the data of a reliability diagram.

    A perfectly calibrated model has ``accuracy == confidence`` in every
    bin. Empty bins have ``count == 0`` and NaN confidence and accuracy.

    Attributes:
        bin_edges: ``[bins + 1]`` edges, 0 to 1.
        confidence: ``[bins]`` mean top probability per bin.
        accuracy: ``[bins]`` fraction of correct top-1 answers per bin.
        count: ``[bins]`` samples per bin.

    Example:
        >>> import numpy as np, hubtransfer
        >>> curve = hubtransfer.reliability_curve(
        ...     np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), [0, 1, 1], bins=2)
        >>> curve.count.tolist(), curve.accuracy.round(2).tolist()
        ([0, 3], [nan, 0.67])
    """

    bin_edges: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    accuracy: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64]

    @property
    def n_samples(self) -> int:
        """Samples over all bins."""
        return int(self.count.sum())

    @property
    def expected_calibration_error(self) -> float:
        """``sum(count / n * |accuracy - confidence|)`` over non-empty bins."""
        if not self.n_samples:
            return 0.0
        used = self.count > 0
        gaps = np.abs(self.accuracy[used] - self.confidence[used])
        return float((self.count[used] / self.n_samples * gaps).sum())

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict (``null`` for empty bins)."""

        def listed(values: npt.NDArray[np.float64]) -> list[float | None]:
            return [None if math.isnan(v) else float(v) for v in values]

        return {
            "bin_edges": [float(v) for v in self.bin_edges],
            "confidence": listed(self.confidence),
            "accuracy": listed(self.accuracy),
            "count": [int(v) for v in self.count],
        }


def reliability_curve(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, bins: int = DEFAULT_BINS
) -> ReliabilityCurve:
    """Bins the top-label confidences into equal-width bins and measures each bin.

    Args:
        probabilities: ``[n, n_classes]`` probabilities.
        labels: ``[n]`` true class indexes.
        bins: Number of equal-width bins over ``[0, 1]``.

    Returns:
        A :class:`ReliabilityCurve`.
    """
    where = "reliability_curve"
    count_of_bins = _bins(bins, where)
    array = _probabilities(probabilities, where)
    truth = _labels(labels, len(array), array.shape[1], where)
    confidence = array.max(axis=1)
    correct = array.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, count_of_bins + 1)
    # Bin i holds (edges[i], edges[i + 1]]; confidence 0 joins bin 0. Comparing with the
    # edges (not ceil(confidence * bins)) keeps 0.7 in (0.6, 0.7] although 0.7 * 10 > 7.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, count_of_bins - 1)
    count = np.bincount(index, minlength=count_of_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, count_of_bins) / count
        accuracy = np.bincount(index, correct.astype(np.float64), count_of_bins) / count
    return ReliabilityCurve(
        bin_edges=edges,
        confidence=np.where(count > 0, mean_confidence, np.nan),
        accuracy=np.where(count > 0, accuracy, np.nan),
        count=count,
    )


def expected_calibration_error(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, bins: int = DEFAULT_BINS
) -> float:
    """Top-label expected calibration error with equal-width bins.

    Args:
        probabilities: ``[n, n_classes]`` probabilities.
        labels: ``[n]`` true class indexes.
        bins: Number of equal-width bins over ``[0, 1]``.

    Returns:
        The ECE, in ``[0, 1]`` (0 for no samples).

    Example:
        >>> import numpy as np, hubtransfer
        >>> probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
        >>> round(hubtransfer.expected_calibration_error(probabilities, [0, 1, 1], bins=10), 4)
        0.4
    """
    return reliability_curve(probabilities, labels, bins=bins).expected_calibration_error


def negative_log_likelihood(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean ``-log p[true class]`` (probabilities below ~1.2e-38 count as that)."""
    where = "negative_log_likelihood"
    array = _probabilities(probabilities, where)
    truth = _labels(labels, len(array), array.shape[1], where)
    if not len(array):
        return 0.0
    chosen = np.maximum(array[np.arange(len(truth)), truth], _SMALLEST_PROBABILITY)
    return float(-np.log(chosen).mean())


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationReport:
    """A fitted temperature and the calibration it buys on held-out data.

    Attributes:
        temperature: The fitted ``T``.
        ece_before: Expected calibration error before scaling.
        ece_after: Expected calibration error after scaling.
        nll_before: Negative log-likelihood before scaling.
        nll_after: Negative log-likelihood after scaling.
        n_samples: Held-out samples the temperature was fitted on.
        bins: Bins of the ECE.
        at_bound: Whether ``T`` is a bound of the search (the data did not
            pin it down; typically every sample was already right with a
            margin).

    Example:
        >>> import hubtransfer
        >>> report = hubtransfer.CalibrationReport(
        ...     temperature=1.5, ece_before=0.12, ece_after=0.03, nll_before=0.6,
        ...     nll_after=0.4, n_samples=200)
        >>> hubtransfer.CalibrationReport.from_json(report.to_json()) == report
        True
    """

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    n_samples: int
    bins: int = DEFAULT_BINS
    at_bound: bool = False

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict; :meth:`from_json` inverts it."""
        return {
            "temperature": self.temperature,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "nll_before": self.nll_before,
            "nll_after": self.nll_after,
            "n_samples": self.n_samples,
            "bins": self.bins,
            "at_bound": self.at_bound,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationReport:
        """Builds a report from :meth:`to_json`'s output.

        Raises:
            InvalidParameterError: If a field is missing or of the wrong type.
        """
        try:
            return cls(
                temperature=float(data["temperature"]),
                ece_before=float(data["ece_before"]),
                ece_after=float(data["ece_after"]),
                nll_before=float(data["nll_before"]),
                nll_after=float(data["nll_after"]),
                n_samples=int(data["n_samples"]),
                bins=int(data.get("bins", DEFAULT_BINS)),
                at_bound=bool(data.get("at_bound", False)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidParameterError(
                f"Cannot read a calibration report from {data!r}: {error!r}. Expected the "
                "output of CalibrationReport.to_json()."
            ) from error

    def format(self) -> str:
        """One line: the temperature and what it changed."""
        note = " (at a search bound)" if self.at_bound else ""
        return (
            f"temperature {self.temperature:.3f}{note} on {self.n_samples} images: "
            f"ECE {self.ece_before:.4f} -> {self.ece_after:.4f}, "
            f"NLL {self.nll_before:.4f} -> {self.nll_after:.4f}"
        )


def calibration_report(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    bins: int = DEFAULT_BINS,
    bounds: tuple[float, float] = DEFAULT_BOUNDS,
    smoothing: bool = True,
) -> CalibrationReport:
    """Fits a temperature on held-out probabilities and measures its effect.

    Args:
        probabilities: ``[n, n_classes]`` held-out probabilities.
        labels: ``[n]`` true class indexes.
        bins: Bins of the ECE.
        bounds: Temperatures considered (see :func:`fit_temperature`).
        smoothing: Platt's out-of-sample targets (see :func:`fit_temperature`).

    Returns:
        A :class:`CalibrationReport`.

    Example:
        >>> import numpy as np, hubtransfer
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(0.0, 4.0, (2000, 3))
        >>> labels = np.array([rng.choice(3, p=p) for p in
        ...     hubtransfer.apply_temperature(logits, 3.0, kind="logits")])
        >>> report = hubtransfer.calibration_report(
        ...     hubtransfer.apply_temperature(logits, 1.0, kind="logits"), labels)
        >>> report.ece_after < report.ece_before, round(report.temperature)
        (True, 3)
    """
    where = "calibration_report"
    array = _probabilities(probabilities, where)
    truth = _labels(labels, len(array), array.shape[1], where)
    temperature = fit_temperature(
        array, truth, kind="probabilities", bounds=bounds, smoothing=smoothing
    )
    scaled = apply_temperature(array, temperature, kind="probabilities")
    low, high = _bounds(bounds, where)
    return CalibrationReport(
        temperature=temperature,
        ece_before=expected_calibration_error(array, truth, bins=bins),
        ece_after=expected_calibration_error(scaled, truth, bins=bins),
        nll_before=negative_log_likelihood(array, truth),
        nll_after=negative_log_likelihood(scaled, truth),
        n_samples=len(truth),
        bins=bins,
        at_bound=temperature in (low, high),
    )


# --- Unknown ----------------------------------------------------------------------------------


def confidence_threshold(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, *, keep: float = 0.95
) -> float:
    """A ``min_confidence`` that keeps a share of the correct answers on held-out data.

    The ``1 - keep`` quantile of the top probability over the correctly
    classified samples: with ``keep=0.95``, 95 % of the answers that were
    right keep their class, the rest (and any image less typical than them)
    become unknown.

    Args:
        probabilities: ``[n, n_classes]`` held-out probabilities (calibrated
            ones, if the model will use calibrated ones).
        labels: ``[n]`` true class indexes.
        keep: Share of correct answers to keep, in ``(0, 1]``.

    Returns:
        The threshold, in ``[0, 1]``.

    Raises:
        InvalidParameterError: For a bad ``keep``, or if no sample is
            classified correctly.

    Example:
        >>> import numpy as np, hubtransfer
        >>> probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
        >>> hubtransfer.confidence_threshold(probabilities, [0, 0, 1, 1], keep=1.0)
        0.7
    """
    where = "confidence_threshold"
    if (
        isinstance(keep, bool)
        or not isinstance(keep, (int, float))
        or not math.isfinite(keep)
        or not 0 < keep <= 1
    ):
        raise InvalidParameterError(
            f"The 'keep' parameter of {where} must be a float in (0, 1]. Got {keep!r} instead."
        )
    array = _probabilities(probabilities, where)
    truth = _labels(labels, len(array), array.shape[1], where)
    correct = array.argmax(axis=1) == truth
    if not correct.any():
        raise InvalidParameterError(
            f"{where} found no correctly classified sample among {len(truth)}; a confidence "
            "floor cannot be chosen from them. Check the labels' order against the columns."
        )
    confidence = array.max(axis=1)[correct]
    return float(np.quantile(confidence, 1.0 - keep, method="lower"))


def with_unknown(
    probabilities: npt.ArrayLike,
    classes: Sequence[str] | npt.NDArray[Any],
    *,
    min_confidence: float,
    unknown_label: str = "unknown",
) -> npt.NDArray[np.str_]:
    """The most likely class of each row, or ``unknown_label`` where it is not likely enough.

    Args:
        probabilities: ``[n, len(classes)]`` probabilities.
        classes: The class name of each column.
        min_confidence: Rows whose top probability is below this are unknown
            (0 keeps every answer).
        unknown_label: The answer for unknown rows; must not be a class.

    Returns:
        ``[n]`` str array of class names and ``unknown_label``.

    Raises:
        InvalidParameterError: For a ``min_confidence`` outside ``[0, 1]``,
            an ``unknown_label`` that is empty or a class name, or
            probabilities of the wrong shape.

    Example:
        >>> import numpy as np, hubtransfer
        >>> probabilities = np.array([[0.9, 0.1], [0.55, 0.45]])
        >>> hubtransfer.with_unknown(probabilities, ["cat", "dog"], min_confidence=0.6).tolist()
        ['cat', 'unknown']
    """
    where = "with_unknown"
    names = [str(c) for c in np.asarray(classes).reshape(-1).tolist()]
    if (
        isinstance(min_confidence, bool)
        or not isinstance(min_confidence, (int, float, np.floating))
        or not 0.0 <= float(min_confidence) <= 1.0
    ):
        raise InvalidParameterError(
            f"The 'min_confidence' parameter of {where} must be a float in [0, 1]. Got "
            f"{min_confidence!r} instead."
        )
    if not isinstance(unknown_label, str) or not unknown_label.strip():
        raise InvalidParameterError(
            f"The 'unknown_label' parameter of {where} must be a non-empty str. Got "
            f"{unknown_label!r} instead."
        )
    if unknown_label in names:
        raise InvalidParameterError(
            f"The 'unknown_label' {unknown_label!r} of {where} is also a class name, so unknown "
            "answers could not be told apart. Pass another unknown_label."
        )
    array = _scores(probabilities, where)
    if array.shape[1] != len(names):
        raise InvalidParameterError(
            f"{where} got probabilities with {array.shape[1]} columns for {len(names)} classes "
            f"{names[:5]!r}; pass the classes in column order (model.classes_)."
        )
    answers = np.asarray([*names, unknown_label])
    chosen = array.argmax(axis=1) if len(array) else np.zeros(0, np.int64)
    unknown = array.max(axis=1) < float(min_confidence) if len(array) else np.zeros(0, bool)
    result: npt.NDArray[np.str_] = answers[np.where(unknown, len(names), chosen)]
    return result
