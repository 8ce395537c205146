"""Argument checks shared by the public entry points (raise before any work is done)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ._exceptions import ImageDecodeError, InvalidParameterError

__all__ = [
    "bad_parameter",
    "check_bool",
    "check_float",
    "check_images_argument",
    "check_int",
]

_IMAGES: str = (
    "a folder, image file paths, encoded bytes, image arrays ([h, w, c] each, or one "
    "[n, h, w, c] array) or a tf.data.Dataset of images"
)


def bad_parameter(name: str, expected: str, value: object, owner: str) -> InvalidParameterError:
    """The error for a parameter of ``owner`` that is not ``expected``, naming the value."""
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    )


def check_int(value: object, name: str, *, minimum: int, owner: str) -> int:
    """``value`` as an int if it is one (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise bad_parameter(name, expected, value, owner)
    return int(value)


def check_float(
    value: object,
    name: str,
    *,
    low: float,
    high: float,
    owner: str,
    open_low: bool = False,
) -> float:
    """``value`` as a float if it is a finite number in ``[low, high)`` (``(low, high)``)."""
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (
            math.isfinite(number)
            and (number > low if open_low else number >= low)
            and number < high
        )
    if not ok:
        bracket = "(" if open_low else "["
        raise bad_parameter(name, f"a float in {bracket}{low:g}, {high:g})", value, owner)
    return float(value)  # type: ignore[arg-type]


def check_bool(value: object, name: str, owner: str) -> bool:
    """``value`` if it is a bool, else an error naming the parameter and the value."""
    if not isinstance(value, bool):
        raise bad_parameter(name, "True or False", value, owner)
    return value


def check_images_argument(images: Any, owner: str) -> None:
    """Refuses what no prediction can read, before a backbone runs.

    Checks the kind of the argument (not ``None``, a number or a mapping) and
    that every path in it exists; arrays and bytes are checked item by item
    later, by :meth:`Preprocessor.batch <hubtransfer.Preprocessor.batch>`.

    Raises:
        InvalidParameterError: For an argument that is not images at all.
        ImageDecodeError: For paths that do not exist, naming them.
    """
    if isinstance(images, (str, os.PathLike)):
        paths: list[Any] = [images]
    elif images is None or isinstance(images, (bool, int, float, complex, Mapping)):
        raise InvalidParameterError(
            f"{owner} takes {_IMAGES}. Got {images!r} of type {type(images).__name__} instead."
        )
    elif getattr(images, "ndim", None) == 0 or not isinstance(images, Iterable):
        raise InvalidParameterError(
            f"{owner} takes {_IMAGES}. Got {type(images).__name__} {images!r}, which is not "
            "a sequence of images."
        )
    elif isinstance(images, (list, tuple)):
        paths = [item for item in images if isinstance(item, (str, os.PathLike))]
    else:
        return
    missing = [os.fspath(path) for path in paths if not os.path.exists(path)]
    if len(missing) == 1:
        raise ImageDecodeError(
            f"The image file or folder {missing[0]!r} does not exist (passed to {owner}). "
            "Check the path."
        )
    if missing:
        shown = ", ".join(repr(path) for path in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ImageDecodeError(
            f"{len(missing)} of the image files passed to {owner} do not exist: "
            f"{shown}{more}. Check the paths."
        )
