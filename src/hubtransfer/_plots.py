"""Pictures: a grid of images titled with predictions (needs the ``plots`` extra)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ._exceptions import HubTransferError, InvalidParameterError

__all__ = ["load_images_for_display", "plot_folder_predictions", "plot_prediction_grid"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise HubTransferError("Plots need matplotlib: pip install 'hubtransfer[plots]'.") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


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
    plt = _pyplot()
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.75), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= len(images):
            continue
        pixels = np.asarray(images[index])
        if pixels.ndim == 3 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        axis.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
        label = predicted[index]
        wrong = true is not None and true[index] != label
        text = f"{label}\n({true[index]})" if wrong and true is not None else label
        axis.set_title(text, fontsize=8, color="red" if wrong else "black")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".png.tmp")
    os.close(handle)
    try:
        figure.savefig(temporary, format="png", dpi=100)
        os.replace(temporary, target)
    finally:
        plt.close(figure)
        Path(temporary).unlink(missing_ok=True)
    return target


def load_images_for_display(paths: Sequence[str | os.PathLike[str]]) -> list[npt.NDArray[Any]]:
    """Reads image files as RGB arrays, upright (EXIF orientation applied), for plotting."""
    from PIL import Image, ImageOps

    images = []
    for path in paths:
        with Image.open(path) as image:
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
