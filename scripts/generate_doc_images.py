"""Writes the pictures in docs/images/ from a real model on the committed Fashion-MNIST sample.

Usage::

    python scripts/generate_doc_images.py

Trains the default TransferClassifier (embedded EfficientNet-Lite0, offline) on
examples/data/fashion-mnist-sample with seed 0, evaluates it on the test folder, and
draws what the docs show: a grid of test images with their predictions, the confusion
matrix, the training curves and the reliability diagram. About a minute on two CPU
cores; the pictures are the plots hubtransfer makes for users, so rerun it when the
plots change.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
DATA = ROOT / "examples" / "data"

# The pictures must come from this checkout's code, not an installed copy.
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

import hubtransfer  # noqa: E402
from hubtransfer._plots import (  # noqa: E402
    plot_confusion_matrix,
    plot_folder_predictions,
    plot_reliability_diagram,
    plot_training_curves,
)


def main() -> int:
    """Trains the model and writes the four pictures; returns the exit status."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    model = hubtransfer.TransferClassifier(epochs=30, seed=0, verbose=0)
    model.fit(DATA / "fashion-mnist-sample")
    test = hubtransfer.scan_image_folder(
        DATA / "fashion-mnist-sample-test", classes=[str(c) for c in model.classes_]
    )
    # The model as trained, before the temperature fit() calibrates it with.
    probabilities = model.predict_proba(list(test.paths), calibrated=False)
    report = model.evaluate(test)
    written = [
        plot_folder_predictions(
            model, DATA / "fashion-mnist-sample-test", IMAGES / "prediction-grid.png", count=32
        ),
        plot_confusion_matrix(
            report,
            IMAGES / "confusion-matrix.png",
            normalize="true",
            title="EfficientNet-Lite0 + Dense head, Fashion-MNIST test sample",
        ),
        plot_training_curves(
            model.history_, IMAGES / "training-curves.png", title="320 training, 80 validation"
        ),
        plot_reliability_diagram(
            probabilities,
            np.asarray(test.labels),
            IMAGES / "reliability-diagram.png",
            bins=10,
            title="Fashion-MNIST test sample, uncalibrated",
        ),
    ]
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"test accuracy {report.accuracy:.1%}, temperature {model.temperature_}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
