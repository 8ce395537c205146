"""Label maps: the names of a model's output columns, and top-k decoding.

A :class:`LabelMap` names the classes a model's scores stand for. Some models
put extra columns *before* their classes: TF-Hub's 1001-way ImageNet
classifiers output ``background`` in column 0 and the 1000 ImageNet classes in
columns 1 to 1000. A label map says how many such leading *offset columns*
there are, so that class ``i`` is read from column ``offset + i``::

    columns of a TF-Hub ImageNet classifier:  0           1      2          ... 1000
    LabelMap.imagenet() (offset 1):           background  tench  goldfish   ... toilet tissue
                                              ^ offset     ^ class 0         ^ class 999

Offset columns are not classes: they are not in :attr:`LabelMap.classes`,
``len()``, iteration or ``in``, and :meth:`LabelMap.top_k` skips them unless
asked. They may carry names (``offset_names``) so that they can be reported
when asked for.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import operator
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._exceptions import InvalidParameterError, LabelMapError
from ._spec import BackboneSpec

__all__ = ["LabelMap", "Prediction"]

_FORMAT: Final = "hubtransfer.LabelMap"
_FORMAT_VERSION: Final = 1
_IMAGENET_RESOURCE: Final = "data/ImageNetLabels.txt"
_IMAGENET_CLASSES: Final = 1000
# ImageNet has two synsets called "crane" and two called "maillot"; a label map
# needs unique names, so these are renamed (keys are 0-based class indexes).
_IMAGENET_RENAMES: Final = {
    134: ("crane", "crane (bird)"),
    517: ("crane", "crane (machine)"),
    639: ("maillot", "maillot (tank suit)"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """One decoded class: its name, its index in the label map, its score.

    Attributes:
        label: The class name (see :meth:`LabelMap.display_name` for a
            human-friendly form).
        index: The class index, ``column - offset``. It is negative only for
            an offset column, which :meth:`LabelMap.top_k` returns only when
            asked to; ``LabelMap.name(index) == label`` always holds.
        score: The score as given to :meth:`LabelMap.top_k`: a probability
            if probabilities were given, a logit if logits were.

    Example:
        >>> import hubtransfer
        >>> hubtransfer.Prediction(label="cat", index=0, score=0.75)
        Prediction(label='cat', index=0, score=0.75)
    """

    label: str
    index: int
    score: float


def _check_name(value: object, *, role: str) -> str:
    if not isinstance(value, str):
        raise LabelMapError(
            f"Every {role} must be a str. Got {value!r} of type {type(value).__name__} instead; "
            "convert the names with str() first."
        )
    if not value.strip():
        raise LabelMapError(
            f"Every {role} must be a non-empty string. Got {value!r}; give every class a name."
        )
    return str(value)  # a plain str, even for str subclasses such as numpy.str_


def _check_names(values: object, *, role: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise LabelMapError(
            f"The {role}s must be a sequence of str. Got {values!r} instead; "
            "pass a list such as ['cat', 'dog']."
        )
    return tuple(_check_name(value, role=role) for value in values)


def _check_offset(offset: object) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterError(
            f"The 'offset' parameter of LabelMap must be a non-negative int. Got {offset!r} "
            "instead."
        )
    return offset


class LabelMap:
    """Names the classes of a model's output and decodes its scores.

    A label map is immutable, hashable and round-trips through JSON
    (:meth:`to_json`, :meth:`save`, :meth:`load`).

    Args:
        names: Class names, in column order. Unique, non-empty strings.
        display_names: Optional human-friendly names for some classes
            (``{"n02123045": "tabby cat"}``); the others display as their
            name.
        offset: Number of leading output columns that are not classes.
            Class ``i`` is read from column ``offset + i``, so the map decodes
            scores ``offset + len(names)`` wide (:attr:`width`).
        offset_names: Names for the offset columns, reported only by
            ``top_k(..., include_offset_columns=True)``. Default
            ``"<column 0>"``, ``"<column 1>"`` and so on.

    Raises:
        LabelMapError: For empty, duplicate or non-str names, or display
            names for unknown classes.
        InvalidParameterError: For a negative or non-int ``offset``.

    Example:
        >>> import hubtransfer
        >>> labels = hubtransfer.LabelMap(["cat", "dog"], display_names={"cat": "Cat"})
        >>> labels.index("dog"), labels.name(0), labels.display_name("cat")
        (1, 'cat', 'Cat')
        >>> labels.top_k([0.2, 0.8], k=1)
        [[Prediction(label='dog', index=1, score=0.8)]]
    """

    __slots__ = ("_classes", "_display_names", "_offset_names", "_positions")

    def __init__(
        self,
        names: Sequence[str],
        *,
        display_names: Mapping[str, str] | None = None,
        offset: int = 0,
        offset_names: Sequence[str] | None = None,
    ) -> None:
        classes = _check_names(names, role="class name")
        if not classes:
            raise LabelMapError(
                "A LabelMap needs at least one class name. Got an empty list; pass the names "
                "of the model's classes."
            )
        offset = _check_offset(offset)
        if offset_names is None:
            extra = tuple(f"<column {column}>" for column in range(offset))
        else:
            extra = _check_names(offset_names, role="offset column name")
            if len(extra) != offset:
                raise LabelMapError(
                    f"'offset_names' must name each of the {offset} offset column(s). Got "
                    f"{len(extra)} name(s): {list(extra)!r}."
                )
        positions: dict[str, int] = {}
        for index, name in enumerate(extra + classes, start=-offset):
            if name in positions:
                first = positions[name]
                raise LabelMapError(
                    f"The label {name!r} appears twice (indexes {first} and {index}). "
                    "Label names must be unique; rename one of them."
                )
            positions[name] = index
        shown: dict[str, str] = {}
        if display_names is not None:
            if not isinstance(display_names, Mapping):
                raise LabelMapError(
                    f"'display_names' must be a mapping of name to display name. Got "
                    f"{display_names!r} instead."
                )
            for key, value in display_names.items():
                key = _check_name(key, role="display_names key")
                if key not in positions:
                    raise LabelMapError(
                        f"'display_names' has an entry for {key!r}, which is not a label of "
                        f"this map.{_suggest(key, positions)}"
                    )
                shown[key] = _check_name(value, role="display name")
        self._classes: tuple[str, ...] = classes
        self._offset_names: tuple[str, ...] = extra
        self._positions: dict[str, int] = positions
        self._display_names: dict[str, str] = shown

    # Constructors -----------------------------------------------------------

    @classmethod
    def imagenet(cls, *, background: bool = True) -> LabelMap:
        """The ImageNet-1k labels, packaged with hubtransfer.

        Two ImageNet synsets share the name ``crane`` and two ``maillot``;
        they are named ``crane (bird)`` (class 134), ``crane (machine)``
        (517) and ``maillot (tank suit)`` (639) here, so names are unique.

        Args:
            background: ``True`` for the 1001-wide output of TF-Hub's ImageNet
                classifiers: ``background`` is offset column 0 (named, but not
                a class) and the 1000 classes follow. ``False`` for 1000-wide
                outputs (Keras applications, most TF2 classifiers).

        Returns:
            A map of the 1000 ImageNet classes, with offset 1 or 0.

        Example:
            >>> import hubtransfer
            >>> labels = hubtransfer.LabelMap.imagenet()
            >>> len(labels), labels.offset, labels.width, labels.columns[:2]
            (1000, 1, 1001, ('background', 'tench'))
            >>> labels.classes == hubtransfer.LabelMap.imagenet(background=False).classes
            True
        """
        lines = _imagenet_lines()
        if background:
            return cls(lines[1:], offset=1, offset_names=lines[:1])
        return cls(lines[1:])

    @classmethod
    def for_backbone(cls, spec: BackboneSpec) -> LabelMap:
        """The label map for a classification backbone's logits.

        Args:
            spec: A classification :class:`~hubtransfer.BackboneSpec`.

        Returns:
            :meth:`imagenet` with ``background=True`` for a 1001-way ImageNet
            classifier (``label_offset`` 1), ``background=False`` for a
            1000-way one.

        Raises:
            LabelMapError: For a feature-vector backbone (its outputs have no
                labels), or a label set hubtransfer does not ship.

        Example:
            >>> import hubtransfer
            >>> spec = hubtransfer.BackboneSpec(
            ...     name="my_classifier", handle="/models/c", input_size=(224, 224),
            ...     output_kind="classification", num_classes=1001, label_offset=1,
            ...     label_set="imagenet")
            >>> hubtransfer.LabelMap.for_backbone(spec).width
            1001
        """
        if not isinstance(spec, BackboneSpec):
            raise InvalidParameterError(
                f"The 'spec' parameter of LabelMap.for_backbone must be a BackboneSpec. Got "
                f"{spec!r} instead; look one up with hubtransfer.get_backbone_spec(name)."
            )
        if spec.output_kind != "classification":
            raise LabelMapError(
                f"The backbone {spec.name!r} outputs feature vectors, which have no labels. "
                "Train a head on your classes (its labels are a LabelMap built from your "
                "class names), or use a classification backbone."
            )
        if spec.label_set == "imagenet":
            if spec.num_classes == _IMAGENET_CLASSES + 1 and spec.label_offset == 1:
                return cls.imagenet(background=True)
            if spec.num_classes == _IMAGENET_CLASSES and spec.label_offset == 0:
                return cls.imagenet(background=False)
        raise LabelMapError(
            f"hubtransfer ships no labels for the backbone {spec.name!r} (label_set "
            f"{spec.label_set!r}, {spec.num_classes} classes, label_offset "
            f"{spec.label_offset}); it has the ImageNet labels for 1001-way (offset 1) and "
            "1000-way outputs only. Pass a LabelMap built from the model's label file, e.g. "
            f"hubtransfer.LabelMap(names, offset={spec.label_offset})."
        )

    @classmethod
    def from_folder(cls, path: str | os.PathLike[str]) -> LabelMap:
        """The classes of an image folder with one sub-folder per class.

        Sub-folder names sorted by code point, as Keras'
        ``image_dataset_from_directory`` does; hidden folders (``.name``) are
        skipped, as are plain files.

        Raises:
            LabelMapError: If ``path`` is not a folder or has no sub-folders.

        Example:
            >>> import hubtransfer, pathlib, tempfile
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> for name in ("dogs", "cats", ".cache"):
            ...     (root / name).mkdir()
            >>> hubtransfer.LabelMap.from_folder(root).classes
            ('cats', 'dogs')
        """
        folder = Path(path)
        if not folder.is_dir():
            raise LabelMapError(
                f"{str(folder)!r} is not a folder. LabelMap.from_folder expects a folder with "
                "one sub-folder of images per class."
            )
        with os.scandir(folder) as entries:
            names = sorted(
                entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")
            )
        if not names:
            raise LabelMapError(
                f"The folder {str(folder)!r} has no sub-folders. Put the images of each class "
                "in a sub-folder named after the class (e.g. cats/, dogs/)."
            )
        return cls(names)

    # Introspection ----------------------------------------------------------

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, class index order (offset columns excluded)."""
        return self._classes

    @property
    def offset(self) -> int:
        """Number of leading output columns that are not classes."""
        return len(self._offset_names)

    @property
    def offset_names(self) -> tuple[str, ...]:
        """Names of the offset columns (``("background",)`` for TF-Hub ImageNet)."""
        return self._offset_names

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of every output column: offset columns, then classes."""
        return self._offset_names + self._classes

    @property
    def width(self) -> int:
        """Number of output columns the map decodes: ``offset + len(classes)``."""
        return len(self._offset_names) + len(self._classes)

    @property
    def display_names(self) -> dict[str, str]:
        """The explicit display names given (a copy)."""
        return dict(self._display_names)

    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._positions.get(name, -1) >= 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelMap):
            return NotImplemented
        return (
            self._classes == other._classes
            and self._offset_names == other._offset_names
            and self._display_names == other._display_names
        )

    def __hash__(self) -> int:
        return hash((self._classes, self._offset_names, frozenset(self._display_names.items())))

    def __repr__(self) -> str:
        shown = ", ".join(repr(name) for name in self._classes[:3])
        more = ", ..." if len(self._classes) > 3 else ""
        offset = f", offset={self.offset}" if self.offset else ""
        return f"LabelMap([{shown}{more}] ({len(self._classes)} classes){offset})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_json, (self.to_json(),))

    def index(self, name: str) -> int:
        """The class index of ``name`` (negative for an offset column's name).

        Raises:
            LabelMapError: For an unknown name, suggesting close matches.
        """
        try:
            return self._positions[name]
        except (KeyError, TypeError):
            raise LabelMapError(
                f"Unknown label {name!r}.{_suggest(name, self._positions)} This map has "
                f"{len(self._classes)} classes ({self._preview()})."
            ) from None

    def name(self, index: int) -> str:
        """The name of class ``index``.

        ``-offset`` to ``-1`` name the offset columns (not Python's
        count-from-the-end), so ``name(p.index) == p.label`` for every
        :class:`Prediction`.

        Raises:
            LabelMapError: If ``index`` is out of ``[-offset, len(classes))``.
        """
        try:
            position = operator.index(index)
        except TypeError:
            raise LabelMapError(f"A class index must be an int. Got {index!r} instead.") from None
        if isinstance(index, bool) or not -self.offset <= position < len(self._classes):
            message = (
                f"Class index {index!r} is out of range: this map has {len(self._classes)} "
                f"classes (indexes 0 to {len(self._classes) - 1})"
            )
            if self.offset:
                message += f" and {self.offset} offset column(s) (indexes -{self.offset} to -1)"
            raise LabelMapError(message + ".")
        return self._offset_names[position] if position < 0 else self._classes[position]

    def display_name(self, name: str) -> str:
        """The human-friendly name of a label (the name itself unless given).

        Raises:
            LabelMapError: For an unknown name.
        """
        self.index(name)
        return self._display_names.get(name, name)

    # Decoding ---------------------------------------------------------------

    def top_k(
        self,
        scores: npt.ArrayLike,
        k: int = 5,
        *,
        include_offset_columns: bool = False,
    ) -> list[list[Prediction]]:
        """The ``k`` best classes of each row of scores, best first.

        Scores are ranked as given: pass probabilities to get probabilities
        back, logits to get logits (softmax does not change the order). Ties
        go to the lower column. No softmax or other transform is applied.

        Args:
            scores: ``[n, width]`` or ``[width]`` numbers (numpy array,
                tensor or nested lists), one column per output column.
            k: How many predictions per row. Larger than the number of
                candidate columns is clamped to it, so ``k=5`` works on a
                three-class map.
            include_offset_columns: Also rank the offset columns (TF-Hub's
                ``background``); their predictions have negative indexes.

        Returns:
            One list per row (a single list for a 1-D input).

        Raises:
            LabelMapError: If the scores are not :attr:`width` columns wide.
            InvalidParameterError: For a bad ``k``, non-numeric or NaN scores,
                or scores of rank other than 1 or 2.

        Example:
            >>> import numpy as np, hubtransfer
            >>> logits = np.zeros(1001, np.float32)
            >>> logits[[0, 283, 286]] = [9.0, 5.0, 3.0]   # background, tiger cat, Egyptian cat
            >>> [p.label for p in hubtransfer.LabelMap.imagenet().top_k(logits, k=2)[0]]
            ['tiger cat', 'Egyptian cat']
            >>> hubtransfer.LabelMap.imagenet().top_k(logits, k=1, include_offset_columns=True)
            [[Prediction(label='background', index=-1, score=9.0)]]
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidParameterError(
                f"The 'k' parameter of LabelMap.top_k must be a positive int. Got {k!r} instead."
            )
        try:
            array = np.asarray(scores)
        except (TypeError, ValueError) as error:
            raise InvalidParameterError(
                f"The scores passed to LabelMap.top_k are not a numeric array: {error}"
            ) from error
        if array.dtype.kind not in "iuf":
            raise InvalidParameterError(
                f"The scores passed to LabelMap.top_k must be numbers. Got an array of dtype "
                f"{array.dtype} and shape {array.shape}."
            )
        if array.ndim == 1:
            array = array[np.newaxis, :]
        elif array.ndim != 2:
            raise InvalidParameterError(
                f"The scores passed to LabelMap.top_k must be [n, {self.width}] or "
                f"[{self.width}]. Got shape {array.shape}."
            )
        if array.shape[1] != self.width:
            raise LabelMapError(self._width_message(array.shape[1]))
        values = array.astype(np.float64)
        if np.isnan(values).any():
            row = int(np.argwhere(np.isnan(values))[0][0])
            raise InvalidParameterError(
                f"The scores passed to LabelMap.top_k hold NaN (first in row {row}); check "
                "the model's input for NaN or infinite pixels."
            )
        first = 0 if include_offset_columns else self.offset
        candidates = values[:, first:]
        count = min(int(k), candidates.shape[1])
        # A stable sort of the negated scores ranks ties by column, so dropping
        # offset columns never reorders the classes.
        order = np.argsort(-candidates, axis=1, kind="stable")[:, :count]
        columns = self.columns
        return [
            [
                Prediction(
                    label=columns[first + position],
                    index=first + position - self.offset,
                    score=float(candidates[row, position]),
                )
                for position in order[row].tolist()
            ]
            for row in range(candidates.shape[0])
        ]

    def _width_message(self, width: int) -> str:
        expected = (
            f"{self.width} ({self.offset} offset column(s) + {len(self._classes)} classes)"
            if self.offset
            else f"{self.width}"
        )
        message = f"The scores have {width} columns but this LabelMap expects {expected}."
        if self.offset and width == len(self._classes):
            message += (
                " They look like scores without the offset column(s): use "
                "LabelMap(labels.classes) (offset 0) for them."
            )
        elif width == self.width + 1:
            message += (
                " A 1001-wide TF-Hub ImageNet output needs LabelMap.imagenet() (offset 1)."
                if width == _IMAGENET_CLASSES + 1
                else " If column 0 is not a class, build the map with offset=1."
            )
        else:
            message += " Use the label map that belongs to this model."
        return message

    def _preview(self) -> str:
        shown = ", ".join(repr(name) for name in self._classes[:5])
        return shown + (", ..." if len(self._classes) > 5 else "")

    # Serialisation ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict; :meth:`from_json` inverts it exactly."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "classes": list(self._classes),
            "offset": self.offset,
            "offset_names": list(self._offset_names),
            "display_names": dict(self._display_names),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelMap:
        """Builds a map from :meth:`to_json`'s output.

        Raises:
            LabelMapError: If ``data`` is not a label map's JSON.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("classes"), list):
            raise LabelMapError(
                f"Cannot read a label map from {_shorten(data)}: expected the output of "
                "LabelMap.to_json(), a dict with a 'classes' list."
            )
        if data.get("format", _FORMAT) != _FORMAT or data.get("version", 1) != _FORMAT_VERSION:
            raise LabelMapError(
                f"Cannot read a label map of format {data.get('format')!r} version "
                f"{data.get('version')!r}; this hubtransfer reads {_FORMAT!r} version "
                f"{_FORMAT_VERSION}. Upgrade hubtransfer, or rebuild the map."
            )
        offset_names = data.get("offset_names")
        offset = data.get("offset", 0 if offset_names is None else len(offset_names))
        try:
            return cls(
                data["classes"],
                display_names=data.get("display_names") or None,
                offset=offset,
                offset_names=offset_names,
            )
        except InvalidParameterError as error:
            raise LabelMapError(f"Cannot read a label map: {error}") from error

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the map as UTF-8 JSON, atomically (a reader never sees half a file).

        Returns:
            The path written.

        Example:
            >>> import hubtransfer, pathlib, tempfile
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.json"
            >>> labels = hubtransfer.LabelMap(["cat", "dog"])
            >>> hubtransfer.LabelMap.load(labels.save(path)) == labels
            True
        """
        target = Path(path)
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n"
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelMap:
        """Reads a map written by :meth:`save`.

        Raises:
            OSError: If the file cannot be read (``FileNotFoundError`` etc.).
            LabelMapError: If it is not a label map's JSON.
        """
        source = Path(path)
        raw = source.read_bytes()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LabelMapError(
                f"{str(source)!r} is not a label map JSON file ({error}). Write one with "
                "LabelMap.save()."
            ) from error
        try:
            return cls.from_json(data)
        except LabelMapError as error:
            raise LabelMapError(f"{str(source)!r}: {error}") from error


def _from_json(data: Mapping[str, Any]) -> LabelMap:
    return LabelMap.from_json(data)


def _suggest(name: object, known: Iterable[str]) -> str:
    if not isinstance(name, str):
        return ""
    matches = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(match) for match in matches) + "?"


def _shorten(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=1)
def _imagenet_lines() -> tuple[str, ...]:
    resource = resources.files(__package__ or "hubtransfer").joinpath(_IMAGENET_RESOURCE)
    lines = resource.read_text(encoding="utf-8").splitlines()
    if len(lines) != _IMAGENET_CLASSES + 1 or lines[0] != "background":
        raise LabelMapError(
            f"The packaged file hubtransfer/{_IMAGENET_RESOURCE} is damaged ({len(lines)} lines, "
            f"first {lines[0] if lines else None!r}; expected 1001 lines starting with "
            "'background'). Reinstall hubtransfer."
        )
    names = list(lines)
    for index, (original, renamed) in _IMAGENET_RENAMES.items():
        if names[index + 1] != original:
            raise LabelMapError(
                f"The packaged file hubtransfer/{_IMAGENET_RESOURCE} has {names[index + 1]!r} "
                f"for class {index}, expected {original!r}. Reinstall hubtransfer."
            )
        names[index + 1] = renamed
    return tuple(names)
