"""Reading a saved model's files without trusting them: one schema, with size and depth limits.

A saved model folder may have been edited by hand, damaged, or made by
someone else. Loading reads it through this module, which refuses, with one
:class:`~hubtransfer.ModelFormatError` naming the file and what is wrong,
instead of a ``TypeError``, ``RecursionError`` or a 2 GB allocation:

* ``hubtransfer.json`` larger than :data:`MAX_DESCRIPTION_BYTES`, nested deeper
  than :data:`MAX_DEPTH`, or not of the documented shape (each key's type;
  ``params`` holding only the estimator's parameters);
* ``head.npz`` members that are not the ``w0``, ``w1``... float arrays, that
  are pickled objects, or that claim more data than the file holds (so
  nothing is allocated beyond the file's own size).
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._exceptions import ModelFormatError
from ._files import read_npy_header, read_regular

__all__ = ["MAX_DEPTH", "MAX_DESCRIPTION_BYTES", "read_description", "read_head_weights"]

MAX_DESCRIPTION_BYTES: Final = 16 << 20
"""The largest ``hubtransfer.json`` read (16 MiB; a model of 20,000 classes needs under 2)."""
MAX_DEPTH: Final = 32
"""The deepest nesting of JSON objects and lists accepted (a saved model uses 6)."""

_Check = Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and not math.isnan(value))


def _optional(check: _Check) -> _Check:
    return lambda value: value is None or check(value)


def _list_of(check: _Check) -> _Check:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value > 0


# key -> (check, what it must be, required)
_TOP: Final[dict[str, tuple[_Check, str, bool]]] = {
    "format": (_is_str, "a string", True),
    "format_version": (_is_int, "an integer", True),
    "hubtransfer_version": (_is_str, "a string", False),
    "classes": (_list_of(_is_str), "a list of class names", True),
    "integer_classes": (lambda v: isinstance(v, bool), "true or false", False),
    "label_map": (_is_dict, "an object", True),
    "preprocessing": (_is_dict, "an object", True),
    "backbone": (_is_dict, "an object", True),
    "head": (_is_dict, "an object", True),
    "params": (_is_dict, "an object", True),
    "history": (
        lambda v: _is_dict(v) and all(_list_of(_optional(_is_number))(x) for x in v.values()),
        "an object of lists of numbers",
        False,
    ),
    "calibration": (_optional(_is_dict), "an object or null", False),
    "precision": (_is_dict, "an object", False),
    "files": (
        lambda v: _is_dict(v) and bool(v) and all(_is_str(x) for x in v.values()),
        "an object of file checksums",
        True,
    ),
}
_BACKBONE: Final[dict[str, tuple[_Check, str, bool]]] = {
    "spec": (_is_dict, "an object", True),
    "content_hash": (_is_str, "a string", True),
}
_HEAD: Final[dict[str, tuple[_Check, str, bool]]] = {
    "feature_dim": (_positive_int, "a positive integer", True),
    "n_classes": (_positive_int, "a positive integer", True),
    "hidden_units": (_optional(_positive_int), "a positive integer or null", False),
    "dropout": (_is_number, "a number", False),
    "weights": (_list_of(_is_str), "a list of names", False),
}
_PRECISION: Final[dict[str, tuple[_Check, str, bool]]] = {
    "resolved": (_is_str, "a string", False),
    "check": (_optional(_is_dict), "an object or null", False),
}


def _problem(file: Path, where: str, detail: str) -> ModelFormatError:
    return ModelFormatError(
        f"The model description {str(file)!r} is not valid: {where} {detail}. "
        "The folder was edited or damaged; save the model again, or restore it from a copy."
    )


def _check_object(
    data: Mapping[str, Any], fields: Mapping[str, tuple[_Check, str, bool]], file: Path, where: str
) -> None:
    for key, (check, what, required) in fields.items():
        if key not in data:
            if required:
                raise _problem(file, f"'{where}{key}'", "is missing")
            continue
        if not check(data[key]):
            shown = repr(data[key])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise _problem(file, f"'{where}{key}'", f"must be {what}; it is {shown}")


def _depth(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


def read_description(file: Path) -> dict[str, Any]:
    """Reads a saved model's ``hubtransfer.json`` within the size and depth limits.

    Returns:
        The description (a JSON object); :func:`validate_description` checks
        its shape once its format version is known.

    Raises:
        ModelFormatError: If the file is missing, too large, not JSON, nested
            too deeply, or not of the expected shape; naming the file.
        OSError: If the file system refuses the read for another reason.
    """
    try:
        raw = read_regular(file, limit=MAX_DESCRIPTION_BYTES)
    except FileNotFoundError:
        raise ModelFormatError(
            f"The folder {str(file.parent)!r} has no {file.name}, so it is not a hubtransfer "
            "model. Pass the folder written by TransferClassifier.save()."
        ) from None
    except OSError as error:
        raise ModelFormatError(
            f"The model description {str(file)!r} cannot be read: {error.strerror or error} "
            f"(a model description is at most {MAX_DESCRIPTION_BYTES >> 20} MiB). Save the "
            "model again."
        ) from error
    try:
        metadata = json.loads(raw.decode("utf8"))
    except RecursionError:
        raise _problem(file, "the JSON", f"is nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFormatError(
            f"The file {str(file)!r} is not valid JSON ({error}); the model folder is damaged. "
            "Save the model again."
        ) from error
    if _depth(metadata) > MAX_DEPTH:
        raise _problem(file, "the JSON", f"is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(metadata, dict):
        raise _problem(file, "the top level", "must be an object")
    return metadata


def validate_description(
    metadata: Mapping[str, Any], file: Path, *, param_names: Collection[str]
) -> None:
    """Checks the shape of a description :func:`read_description` read (after its version).

    Raises:
        ModelFormatError: Naming the key that is missing or of the wrong type.
    """
    _check_object(metadata, _TOP, file, "")
    _check_object(metadata["backbone"], _BACKBONE, file, "backbone.")
    _check_object(metadata["head"], _HEAD, file, "head.")
    if "precision" in metadata:
        _check_object(metadata["precision"], _PRECISION, file, "precision.")
    unknown = sorted(set(metadata["params"]) - set(param_names))
    if unknown:
        raise _problem(
            file,
            "'params'",
            f"holds {unknown}, which are not parameters of TransferClassifier (a newer "
            "hubtransfer may have written it: upgrade to load it)",
        )
    if metadata["head"]["n_classes"] != len(metadata["classes"]):
        raise _problem(
            file,
            "'head.n_classes'",
            f"is {metadata['head']['n_classes']}, but 'classes' names {len(metadata['classes'])}",
        )


def read_head_weights(file: Path, *, feature_dim: int, n_classes: int) -> list[npt.NDArray[Any]]:
    """The head's weight arrays ``w0, w1, ...`` from ``head.npz``, checked before they are read.

    Each member's ``.npy`` header is read first: the members must be float
    arrays named ``w0.npy``, ``w1.npy``..., the first kernel ``feature_dim``
    wide, the last layer ``n_classes`` wide, and together no larger than the
    file itself (``numpy.savez`` stores them uncompressed), so reading them
    allocates no more than the file's size. Nothing is ever unpickled.

    Raises:
        ModelFormatError: Naming the file and what is wrong.
    """

    def bad(detail: str) -> ModelFormatError:
        return ModelFormatError(
            f"The head weights {str(file)!r} are not valid: {detail}. The folder was edited "
            "or damaged; save the model again."
        )

    try:
        size = file.stat().st_size
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            expected = [f"w{i}.npy" for i in range(len(members))]
            if sorted(m.filename for m in members) != sorted(expected) or not members:
                raise bad(
                    f"its members are {[m.filename for m in members][:6]}, not w0.npy, w1.npy..."
                )
            shapes: dict[str, tuple[int, ...]] = {}
            declared = 0
            for member in members:
                with archive.open(member) as stream:
                    shape, dtype = read_npy_header(stream)  # type: ignore[arg-type]
                if dtype.kind != "f" or dtype.hasobject:
                    raise bad(f"{member.filename} holds {dtype} values, not floats")
                shapes[member.filename] = shape
                declared += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if declared > size:
                raise bad(
                    f"its members claim {declared:,} bytes of weights, more than the file's "
                    f"{size:,}"
                )
            first, last = shapes["w0.npy"], shapes[expected[-1]]
            if len(first) != 2 or first[0] != feature_dim:
                raise bad(f"the first kernel is shaped {first}, not ({feature_dim}, ...)")
            if not last or last[-1] != n_classes:
                raise bad(f"the last layer is shaped {last}, not (..., {n_classes})")
            return [
                np.lib.format.read_array(archive.open(name), allow_pickle=False)
                for name in expected
            ]
    except ModelFormatError:
        raise
    except FileNotFoundError:
        raise bad("the file is missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise bad(f"{error}") from error
