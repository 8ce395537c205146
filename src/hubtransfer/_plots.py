"""Pictures: prediction grids, confusion matrices, training curves, reliability diagrams.

Every function writes one PNG atomically (to a temporary file beside the
target, then renamed), returns its path, and needs matplotlib (the ``plots``
extra); without it they raise :class:`~hubtransfer.HubTransferError` saying
how to install it. They draw on standalone matplotlib figures, never through
``pyplot``: no window opens, the caller's backend (a notebook's, a GUI's) is left
alone, and no global figure state is touched, so they are safe in threads.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ._evaluation import EvaluationReport
from ._exceptions import HubTransferError, InvalidParameterError
from ._files import read_regular

__all__ = [
    "Normalize",
    "load_images_for_display",
    "plot_confusion_matrix",
    "plot_folder_predictions",
    "plot_prediction_grid",
    "plot_reliability_diagram",
    "plot_training_curves",
]

Normalize = Literal["true", "pred", "all"]
_NORMALIZE: Final = ("true", "pred", "all")

_WRONG: Final = "#c62828"
_TRAIN: Final = "#1f77b4"
_VALIDATION: Final = "#ff7f0e"
_FINE_TUNE_SHADE: Final = "#e8f1e4"
_CELL_TEXT_LIMIT: Final = 30
"""Above this many classes a confusion matrix has no numbers in its cells."""
_TICK_LABEL_LIMIT: Final = 60
"""Above this many classes a confusion matrix has no class names on its axes."""


def require_matplotlib() -> None:
    """Raises the install hint now if matplotlib is missing (before any long work).

    Raises:
        HubTransferError: If matplotlib cannot be imported.
    """
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise HubTransferError("Plots need matplotlib: pip install 'hubtransfer[plots]'.") from None


def _figure(**options: Any) -> Any:
    """A matplotlib ``Figure`` of its own (not pyplot's), or an install hint."""
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(**options)


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    """Writes ``figure`` as PNG to ``path`` atomically."""
    target = Path(path)
    # A fresh name beside the target, created by savefig's open(): unlike mkstemp's 0600
    # files, it gets the permissions the user's umask gives any new file.
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(temporary, format="png", dpi=100)
        os.replace(temporary, target)
    except OSError as error:
        raise HubTransferError(
            f"Cannot write the plot {str(target)!r}: {error}. Pick a writable folder."
        ) from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
    return target


def _check_path(path: object, where: str) -> None:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidParameterError(
            f"The 'path' parameter of {where} must be a file path (str or os.PathLike). "
            f"Got {path!r} instead."
        )


def plot_prediction_grid(
    images: Sequence[npt.ArrayLike],
    predicted: Sequence[str],
    path: str | os.PathLike[str],
    *,
    true: Sequence[str] | None = None,
    columns: int = 8,
    title: str | None = None,
) -> Path:
    """Writes a grid of images titled with their predicted (and true) labels.

    Wrong predictions are titled in red, as ``predicted (true)``.

    Args:
        images: Images as arrays ``[h, w]`` or ``[h, w, c]`` (uint8 or 0-1 floats).
        predicted: Predicted label per image.
        path: PNG file to write (atomically).
        true: Optional true label per image.
        columns: Images per row (8 gives the classic 8x8 grid for 64 images).
        title: Optional figure title.

    Returns:
        The written file.

    Raises:
        InvalidParameterError: If there are no images, or not one label per image.

    Example:
        >>> import tempfile, numpy as np, hubtransfer
        >>> images = [np.full((28, 28), value, np.uint8) for value in (30, 220)]
        >>> path = hubtransfer.plot_prediction_grid(
        ...     images, ["dark", "light"], tempfile.mkdtemp() + "/grid.png",
        ...     true=["dark", "dark"])
        >>> path.name
        'grid.png'
    """
    if len(images) != len(predicted) or (true is not None and len(true) != len(images)):
        raise InvalidParameterError(
            f"plot_prediction_grid needs as many labels as images; got {len(images)} images, "
            f"{len(predicted)} predictions"
            + ("" if true is None else f" and {len(true)} true labels")
            + "."
        )
    if not images:
        raise InvalidParameterError("plot_prediction_grid needs at least one image.")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise InvalidParameterError(
            "The 'columns' parameter of plot_prediction_grid must be a positive int. "
            f"Got {columns!r} instead."
        )
    _check_path(path, "plot_prediction_grid")
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    # Two title lines (predicted, true) need more room than one.
    row_height = 2.0 if true is not None else 1.75
    figure = _figure(figsize=(columns * 1.6, rows * row_height + (0.4 if title else 0.0)))
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= len(images):
            continue
        pixels = np.asarray(images[index])
        if pixels.ndim == 3 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        # Fixed limits: a dark image must not be stretched into a bright one.
        grey = {"cmap": "gray", "vmin": 0, "vmax": 255 if pixels.dtype == np.uint8 else 1}
        axis.imshow(pixels, **(grey if pixels.ndim == 2 else {}))
        label = str(predicted[index])
        wrong = true is not None and str(true[index]) != label
        text = f"{label}\n({true[index]})" if wrong and true is not None else label
        axis.set_title(
            text,
            fontsize=8,
            color=_WRONG if wrong else "black",
            fontweight="bold" if wrong else "normal",
        )
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def load_images_for_display(paths: Sequence[str | os.PathLike[str]]) -> list[npt.NDArray[Any]]:
    """Reads image files as RGB arrays, upright (EXIF orientation applied), for plotting."""
    from PIL import Image, ImageOps

    images = []
    for path in paths:
        with Image.open(io.BytesIO(read_regular(path))) as image:
            images.append(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    return images


def plot_folder_predictions(
    model: Any,
    data_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    count: int = 64,
) -> Path:
    """Writes a grid of images spread evenly over a labelled folder, with predictions.

    Args:
        model: A fitted :class:`~hubtransfer.TransferClassifier`.
        data_dir: A folder with one sub-folder per class (classes the model knows).
        path: PNG file to write.
        count: Images in the grid (64 gives 8x8).

    Returns:
        The written file.
    """
    from ._data import scan_image_folder

    collection = scan_image_folder(data_dir, classes=[str(c) for c in model.classes_])
    size = min(count, len(collection))
    chosen = sorted(set(np.linspace(0, len(collection) - 1, size).astype(int).tolist()))
    paths = [collection.paths[i] for i in chosen]
    true = [collection.classes[collection.labels[i]] for i in chosen]
    predicted = [str(label) for label in model.predict(paths)]
    return plot_prediction_grid(
        load_images_for_display(paths),
        predicted,
        path,
        true=true,
        title=f"{model.backbone_.spec.name}: predicted (true)",
    )


def _normalized(matrix: npt.NDArray[np.float64], normalize: Normalize | None) -> Any:
    if normalize is None:
        return matrix
    if normalize == "true":
        totals = matrix.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        totals = matrix.sum(axis=0, keepdims=True)
    else:
        totals = np.full((1, 1), matrix.sum())
    totals = np.broadcast_to(totals, matrix.shape)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def plot_confusion_matrix(
    report: EvaluationReport,
    path: str | os.PathLike[str],
    *,
    normalize: Normalize | None = None,
    title: str | None = None,
) -> Path:
    """Writes an evaluation's confusion matrix: true classes down, predicted across.

    Cells hold counts, or fractions with ``normalize``; up to 30 classes the
    numbers are printed in the cells (zeros only up to 10 classes), up to 60
    the class names label the axes. The diagonal holds the right answers.

    Args:
        report: An :class:`~hubtransfer.EvaluationReport`, e.g. from
            :meth:`TransferClassifier.evaluate <hubtransfer.TransferClassifier.evaluate>`.
        path: PNG file to write (atomically).
        normalize: ``None`` for counts; ``"true"`` divides each row by the
            images of that class (the diagonal is then each class's recall),
            ``"pred"`` each column by the images predicted as that class
            (precision), ``"all"`` by all images. As in scikit-learn.
        title: Optional title above the accuracy line.

    Returns:
        The written file.

    Raises:
        InvalidParameterError: For a ``report`` that is not an
            ``EvaluationReport``, or an unknown ``normalize``.

    Example:
        >>> import tempfile, numpy as np, hubtransfer
        >>> report = hubtransfer.evaluation_report(
        ...     [0, 1, 1, 2], np.eye(3)[[0, 1, 2, 2]], ["cat", "dog", "fox"])
        >>> path = hubtransfer.plot_confusion_matrix(
        ...     report, tempfile.mkdtemp() + "/confusion.png", normalize="true")
        >>> path.read_bytes()[:4]
        b'\\x89PNG'
    """
    where = "plot_confusion_matrix"
    if not isinstance(report, EvaluationReport):
        raise InvalidParameterError(
            f"The 'report' parameter of {where} must be a hubtransfer.EvaluationReport "
            f"(from model.evaluate(...) or hubtransfer.evaluation_report). Got "
            f"{type(report).__name__} instead."
        )
    if normalize is not None and normalize not in _NORMALIZE:
        raise InvalidParameterError(
            f"The 'normalize' parameter of {where} must be None or one of {_NORMALIZE}. "
            f"Got {normalize!r} instead."
        )
    _check_path(path, where)
    classes = [str(c) for c in report.classes]
    count = len(classes)
    matrix = np.asarray(report.confusion_matrix, np.float64)
    if count == 0 or matrix.shape != (count, count):
        raise InvalidParameterError(
            f"{where} needs a report with a square confusion matrix, one row per class; got "
            f"{count} classes and a matrix shaped {matrix.shape}."
        )
    values = _normalized(matrix, normalize)
    longest = max(len(c) for c in classes) if count <= _TICK_LABEL_LIMIT else 0
    # Room for the rotated class names below and beside the cells, which grow with the count.
    cell = 0.55 if count <= 15 else 0.32 if count <= _CELL_TEXT_LIMIT else 0.16
    labels_room = 0.08 * min(longest, 30)
    side = min(max(count * cell, 3.0), 24.0)
    figure = _figure(figsize=(side + labels_room + 2.2, side + labels_room + 1.3))
    axis = figure.subplots()
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)
    image = axis.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    colourbar = figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    colourbar.set_label("fraction" if normalize else "images")
    if not normalize:
        from matplotlib.ticker import MaxNLocator

        colourbar.locator = MaxNLocator(integer=True)
        colourbar.update_ticks()
    if count <= _CELL_TEXT_LIMIT:
        size = 10 if count <= 10 else 8 if count <= 20 else 6
        for row in range(count):
            for column in range(count):
                value = values[row, column]
                if value == 0 and count > 10:
                    continue  # a sea of zeros hides the confusions that matter
                text = str(int(value)) if not normalize or value == 0 else f"{value:.2f}"
                axis.text(
                    column, row, text, ha="center", va="center", fontsize=size,
                    color="white" if value > 0.6 * vmax else "#9e9e9e" if value == 0 else "black",
                )  # fmt: skip
    if count <= _TICK_LABEL_LIMIT:
        tick_size = 9 if count <= 15 else 7 if count <= 30 else 5
        axis.set_xticks(range(count), classes, fontsize=tick_size)
        axis.set_yticks(range(count), classes, fontsize=tick_size)
        if longest > 3:
            for label in axis.get_xticklabels():
                label.set(rotation=45, ha="right", rotation_mode="anchor")
    else:
        axis.set_xticks([])
        axis.set_yticks([])
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    summary = f"accuracy {report.accuracy:.1%} on {report.n_samples} images"
    scale = {None: "", "true": ", rows sum to 1", "pred": ", columns sum to 1", "all": ""}
    heading = f"{summary}{scale[normalize]}"
    axis.set_title(f"{title}\n{heading}" if title else heading, fontsize=11)
    figure.tight_layout()
    return _save(figure, path)


def _series(history: Mapping[str, Any], key: str, where: str) -> list[float] | None:
    if key not in history:
        return None
    values = history[key]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidParameterError(
            f"{where} needs history[{key!r}] to be a list of floats (one per epoch). Got "
            f"{type(values).__name__} instead."
        )
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidParameterError(
                f"{where} needs history[{key!r}] to be a list of floats; it holds {value!r}."
            )
        result.append(float(value))
    return result or None


def plot_training_curves(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Writes the loss and accuracy per epoch, for training and validation.

    Reads the keys Keras and :class:`~hubtransfer.TransferClassifier` write
    (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``), and the
    fine-tuning phase's ``fine_tune_*`` keys, which are drawn after the head's
    epochs on a shaded band. Other keys are ignored.

    Args:
        history: ``{metric: [value per epoch]}``, such as
            ``TransferClassifier.history_`` or ``HeadTrainer.history_``.
        path: PNG file to write (atomically).
        title: Optional figure title.

    Returns:
        The written file.

    Raises:
        InvalidParameterError: If ``history`` is not a mapping, has no
            ``loss`` or ``accuracy`` values, or holds something other than
            lists of numbers under those keys.

    Example:
        >>> import tempfile, hubtransfer
        >>> history = {"loss": [1.2, 0.7, 0.5], "val_loss": [1.0, 0.8, 0.75],
        ...            "accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.6, 0.7, 0.72]}
        >>> hubtransfer.plot_training_curves(
        ...     history, tempfile.mkdtemp() + "/curves.png").suffix
        '.png'
    """
    where = "plot_training_curves"
    if not isinstance(history, Mapping):
        raise InvalidParameterError(
            f"The 'history' parameter of {where} must be a mapping of metric names to lists "
            f"of floats (model.history_). Got {type(history).__name__} instead."
        )
    _check_path(path, where)
    metrics = [
        metric
        for metric in ("loss", "accuracy")
        if any(
            _series(history, f"{phase}{split}{metric}", where)
            for phase in ("", "fine_tune_")
            for split in ("", "val_")
        )
    ]
    if not metrics:
        raise InvalidParameterError(
            f"{where} found no 'loss' or 'accuracy' values in the history (keys: "
            f"{sorted(history)[:10]!r}). Pass model.history_ after fit()."
        )
    head_epochs = max(
        len(_series(history, key, where) or ())
        for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    )
    tune_epochs = max(
        len(_series(history, f"fine_tune_{key}", where) or ())
        for key in ("loss", "accuracy", "val_loss", "val_accuracy")
    )
    figure = _figure(figsize=(5.2 * len(metrics), 4.3))
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    axes = figure.subplots(1, len(metrics), squeeze=False)
    for axis, metric in zip(axes.flat, metrics, strict=True):
        if tune_epochs:
            axis.axvspan(
                head_epochs + 0.5, head_epochs + tune_epochs + 0.5,
                color=_FINE_TUNE_SHADE, zorder=0, label="fine-tuning",
            )  # fmt: skip
        for split, colour, name in (("", _TRAIN, "training"), ("val_", _VALIDATION, "validation")):
            head = _series(history, f"{split}{metric}", where) or []
            tuned = _series(history, f"fine_tune_{split}{metric}", where) or []
            if not head and not tuned:
                continue
            x = list(range(1, len(head) + 1)) + list(
                range(head_epochs + 1, head_epochs + len(tuned) + 1)
            )
            # One line through both phases: fine-tuning starts from the head's last state.
            axis.plot(
                x, head + tuned, color=colour, label=name, marker="o" if len(x) <= 30 else None,
                markersize=3, linewidth=1.6,
            )  # fmt: skip
        validation_loss = _series(history, "val_loss", where)
        if metric == "loss" and validation_loss:
            best = int(np.nanargmin(validation_loss))
            axis.plot(
                best + 1, validation_loss[best], marker="*", markersize=13, color=_VALIDATION,
                markeredgecolor="black", linestyle="none",
                label=f"lowest validation loss (epoch {best + 1})",
            )  # fmt: skip
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlim(0.5, head_epochs + tune_epochs + 0.5)
        if metric == "accuracy":
            axis.yaxis.set_major_formatter(PercentFormatter(1.0))
        axis.grid(True, alpha=0.3)
        axis.set_title(metric)
    # One legend under both panels: inside an axis it would hide the early epochs.
    legend: dict[str, Any] = {}
    for axis in axes.flat:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    figure.legend(
        list(legend.values()), list(legend), loc="lower center", ncol=len(legend),
        frameon=False, fontsize=9,
    )  # fmt: skip
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0.0, 0.07, 1.0, 1.0))
    return _save(figure, path)


def plot_reliability_diagram(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    path: str | os.PathLike[str],
    *,
    bins: int = 15,
    title: str | None = None,
) -> Path:
    """Writes a reliability diagram: how often the model is right at each confidence.

    The confidences (top probabilities) are put in ``bins`` equal-width bins
    (the bins of :func:`hubtransfer._calibration.reliability_curve`); each
    bar is the accuracy within its bin, the hatched part its gap to the
    bin's mean confidence, and the diagonal is perfect calibration. Bars
    below the diagonal mean over-confidence. The title gives the expected
    calibration error (ECE); the lower panel shows how many images fell in
    each bin.

    Args:
        probabilities: ``[n, n_classes]`` probabilities, e.g. from
            :meth:`TransferClassifier.predict_proba
            <hubtransfer.TransferClassifier.predict_proba>`.
        labels: ``[n]`` true class indexes (columns of ``probabilities``).
        path: PNG file to write (atomically).
        bins: Number of equal-width confidence bins.
        title: Optional title above the ECE line.

    Returns:
        The written file.

    Raises:
        InvalidParameterError: For probabilities that are not ``[n, k]``
            rows summing to 1, labels that are not one class index per row,
            no samples, or a ``bins`` that is not a positive int.

    Example:
        >>> import tempfile, numpy as np, hubtransfer
        >>> rng = np.random.default_rng(0)
        >>> probabilities = rng.dirichlet([1.0, 1.0, 1.0], size=200)
        >>> labels = rng.integers(0, 3, size=200)
        >>> hubtransfer.plot_reliability_diagram(
        ...     probabilities, labels, tempfile.mkdtemp() + "/reliability.png", bins=10).name
        'reliability.png'
    """
    from ._calibration import reliability_curve

    where = "plot_reliability_diagram"
    _check_path(path, where)
    curve = reliability_curve(probabilities, labels, bins=bins)
    if curve.n_samples == 0:
        raise InvalidParameterError(f"{where} needs at least one sample; got none.")
    edges = curve.bin_edges
    width = float(edges[1] - edges[0])
    centres = (edges[:-1] + edges[1:]) / 2
    used = curve.count > 0
    accuracy = np.where(used, curve.accuracy, 0.0)
    confidence = np.where(used, curve.confidence, 0.0)
    figure = _figure(figsize=(5.6, 6.4))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(
        [0, 1], [0, 1], linestyle="--", color="#616161", linewidth=1, label="perfect calibration"
    )
    top.bar(
        centres[used], accuracy[used], width=width, color=_TRAIN, edgecolor="white",
        linewidth=0.8, label="accuracy",
    )  # fmt: skip
    gap_low = np.minimum(accuracy, confidence)[used]
    gap_high = np.maximum(accuracy, confidence)[used]
    # Hatched, not filled: an under-confident bin's gap lies inside its bar and must show.
    top.bar(
        centres[used], gap_high - gap_low, bottom=gap_low, width=width, facecolor="none",
        edgecolor=_WRONG, hatch="///", linewidth=0.8, label="gap to mean confidence",
    )  # fmt: skip
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_aspect("auto")
    top.set_ylabel("accuracy")
    top.grid(True, alpha=0.3)
    top.legend(
        loc="upper left", fontsize=9, title="below the diagonal: over-confident",
        title_fontsize=8, alignment="left",
    )  # fmt: skip
    ece = curve.expected_calibration_error
    heading = f"ECE {ece:.2%} ({len(centres)} bins, {curve.n_samples} samples)"
    top.set_title(f"{title}\n{heading}" if title else heading, fontsize=11)
    bottom.bar(centres, curve.count, width=width, color="#757575", edgecolor="white", linewidth=0.8)
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("samples")
    bottom.grid(True, alpha=0.3, axis="y")
    figure.tight_layout()
    return _save(figure, path)
