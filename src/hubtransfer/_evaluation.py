"""Evaluation reports: accuracy, per-class precision/recall/F1, confusion matrix, top-k."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._exceptions import InvalidParameterError

__all__ = ["ClassMetrics", "EvaluationReport", "evaluation_report"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationReport:
    """How well a classifier did on labelled data.

    Attributes:
        classes: Class names, in the order of the confusion matrix.
        accuracy: Fraction of images whose top class is right.
        top_k_accuracy: ``{k: fraction whose true class is in the top k}``.
        per_class: One :class:`ClassMetrics` per class.
        confusion_matrix: ``[true, predicted]`` counts.
        n_samples: Number of images evaluated.
    """

    classes: tuple[str, ...]
    accuracy: float
    top_k_accuracy: dict[int, float]
    per_class: tuple[ClassMetrics, ...]
    confusion_matrix: npt.NDArray[np.int64]
    n_samples: int

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 scores."""
        return float(np.mean([m.f1 for m in self.per_class])) if self.per_class else 0.0

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict."""
        return {
            "n_samples": self.n_samples,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "top_k_accuracy": {str(k): v for k, v in self.top_k_accuracy.items()},
            "classes": list(self.classes),
            "per_class": [
                {
                    "label": m.label,
                    "precision": m.precision,
                    "recall": m.recall,
                    "f1": m.f1,
                    "support": m.support,
                }
                for m in self.per_class
            ],
            "confusion_matrix": self.confusion_matrix.tolist(),
        }

    def format(self) -> str:
        """A plain-text report, like scikit-learn's ``classification_report``."""
        width = max([len("class"), *(len(c) for c in self.classes)])
        lines = [f"{'class':<{width}}  precision  recall     f1  support"]
        for m in self.per_class:
            lines.append(
                f"{m.label:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  "
                f"{m.f1:5.3f}  {m.support:7d}"
            )
        lines.append("")
        lines.append(f"accuracy {self.accuracy:.4f} on {self.n_samples} images")
        for k, value in self.top_k_accuracy.items():
            lines.append(f"top-{k} accuracy {value:.4f}")
        lines.append(f"macro F1 {self.macro_f1:.4f}")
        return "\n".join(lines)


def evaluation_report(
    true: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    classes: Sequence[str],
    *,
    top_k: Sequence[int] = (1, 5),
) -> EvaluationReport:
    """Builds an :class:`EvaluationReport` from true indexes and class probabilities.

    Example:
        >>> import numpy as np, hubtransfer
        >>> report = hubtransfer.evaluation_report(
        ...     [0, 1, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), ["cat", "dog"])
        >>> round(report.accuracy, 3), report.confusion_matrix.tolist()
        (0.667, [[1, 0], [1, 1]])
    """
    if (
        isinstance(top_k, (str, bytes))
        or not isinstance(top_k, Iterable)
        or not all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1 for k in top_k
        )
    ):
        raise InvalidParameterError(
            f"The 'top_k' parameter of evaluation_report must be a sequence of positive ints, "
            f"such as (1, 5). Got {top_k!r} instead."
        )
    y = np.asarray(true, dtype=np.int64)
    scores = np.asarray(probabilities, dtype=np.float64)
    n_classes = len(classes)
    if y.ndim != 1:
        raise InvalidParameterError(
            f"evaluation_report needs true labels shaped [n]; got {y.shape}."
        )
    if scores.ndim != 2 or scores.shape != (len(y), n_classes):
        raise InvalidParameterError(
            f"evaluation_report needs probabilities shaped ({len(y)}, {n_classes}); "
            f"got {scores.shape}."
        )
    outside = y[(y < 0) | (y >= n_classes)]
    if len(outside):
        # A negative index would silently count as the last class.
        raise InvalidParameterError(
            f"evaluation_report got the true label {int(outside[0])}, outside the "
            f"{n_classes} classes (labels 0 to {n_classes - 1})."
        )
    predicted = scores.argmax(axis=1) if len(y) else np.zeros(0, np.int64)
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (y, predicted), 1)
    per_class = []
    for index, label in enumerate(classes):
        true_positive = float(matrix[index, index])
        predicted_count = float(matrix[:, index].sum())
        support = int(matrix[index].sum())
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            ClassMetrics(label=label, precision=precision, recall=recall, f1=f1, support=support)
        )
    ranked = np.argsort(-scores, axis=1, kind="stable")
    top = {}
    for k in sorted(set(top_k)):
        if k > n_classes:
            continue
        hits = (ranked[:, :k] == y[:, None]).any(axis=1)
        top[k] = float(hits.mean()) if len(y) else 0.0
    accuracy = float((predicted == y).mean()) if len(y) else 0.0
    return EvaluationReport(
        classes=tuple(classes),
        accuracy=accuracy,
        top_k_accuracy=top,
        per_class=tuple(per_class),
        confusion_matrix=matrix,
        n_samples=len(y),
    )
