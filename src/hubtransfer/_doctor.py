"""Checking a data folder before training, and writing a clean copy of it.

Training should not fail an hour in because one file of four thousand is a
truncated download, and a model should not learn from an image stored on its
side. :func:`check_dataset` reads every file of a class-folder data set the
way training will and reports, per class:

* **unusable files** (:attr:`DatasetReport.bad_files`): empty, unreadable,
  not an image (text, WebP, HEIC... named ``.jpg``), a format TensorFlow
  cannot decode (palette or 1-bit BMP, 12-bit JPEG), over the pixel limit
  (a decompression bomb), or damaged: each file is *decoded in full* by the
  decoder training uses, so a JPEG cut off at 90 % is found too;
* **warnings** (:attr:`DatasetReport.warnings`): content that does not match
  the extension, CMYK, 16-bit, palette and transparent images, EXIF-rotated
  photos, animated GIFs, images under ``min_size`` pixels a side, greyscale
  images among colour ones, identical files (SHA-256) within a class, across
  classes (one label is wrong) and across the training/validation split that
  training would make (validation accuracy is then overstated), class
  imbalance, and files the folder scan passed over.

:func:`fix_into` writes a clean copy without touching the source; and
:func:`find_bad_images` is the check ``TransferClassifier.fit`` runs on its
files before training (``on_bad_image="raise"`` or ``"skip"``).

Files are read, hashed and decoded on a thread pool: TensorFlow's decoders
and ``hashlib`` release the GIL. 4,000 JPEGs of 500 x 375 pixels (208 MiB)
take about 10 s of CPU time, nine tenths of it decoding: about 5 s on two
idle cores (see ``docs/reliability.md``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Container, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, TypeVar, get_args

from ._data import DataSplit, ImageCollection, SkippedFile, scan_image_folder, stratified_split
from ._exceptions import DatasetError, ImageDecodeError, InvalidParameterError
from ._files import SpecialFileError, read_regular
from ._folders import CLEAN_COPY, Protected, WriteRule, check_target, write_folder
from ._lazy import tensorflow as tf
from ._preprocessing import (
    _HEADER_BYTES,
    _PNG_SIGNATURE,
    DEFAULT_MAX_PIXELS,
    Preprocessor,
    _bytes_reader,
    _header_problem,
    _ImageInfo,
    _inspect,
    _max_pixels_argument,
    _op_error_reason,
    _pixel_problem,
)
from ._spec import PreprocessingContract

__all__ = [
    "BadImage",
    "BadImageKind",
    "ClassSummary",
    "DatasetReport",
    "DatasetWarning",
    "FixAction",
    "FixResult",
    "ImageRecord",
    "WarningKind",
    "check_dataset",
    "find_bad_images",
    "fix_into",
]

BadImageKind = Literal[
    "missing", "unreadable", "empty", "not an image", "unsupported", "too large", "damaged"
]
"""Why training cannot use a file."""

WarningKind = Literal[
    "empty class",
    "duplicate across classes",
    "split leak",
    "imbalance",
    "rotated",
    "duplicate",
    "extension mismatch",
    "CMYK",
    "16-bit",
    "transparency",
    "animated",
    "palette",
    "grey",
    "too small",
    "skipped",
]
"""What a :class:`DatasetWarning` is about; reports list them in this order, most serious first."""

StrPath: TypeAlias = "str | os.PathLike[str]"
Subset = Literal["train", "validation"]

_REPORT_FORMAT: Final = "hubtransfer.dataset-report"
_FIX_FORMAT: Final = "hubtransfer.dataset-fix"
_FORMAT_VERSION: Final = 1
_EXTENSION_FORMATS: Final = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".gif": "GIF",
    ".bmp": "BMP",
}
_MAGIC: Final = (b"\xff\xd8\xff", _PNG_SIGNATURE, b"GIF8", b"BM")
_ORIENTATIONS: Final = {
    2: "mirrored left to right",
    3: "upside down",
    4: "mirrored top to bottom",
    5: "mirrored along its diagonal",
    6: "to be turned 90° clockwise",
    7: "mirrored along its other diagonal",
    8: "to be turned 90° anticlockwise",
}
_SHOWN: Final = 10
_T = TypeVar("_T")
_R = TypeVar("_R")


# Records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BadImage:
    """A file that training cannot use, and why.

    Args:
        path: The file.
        kind: The kind of problem (see :data:`BadImageKind`).
        reason: What is wrong, phrased to follow the file name, e.g.
            ``"is empty (0 bytes)"``.

    Example:
        >>> from pathlib import Path
        >>> import hubtransfer
        >>> bad = hubtransfer.BadImage(
        ...     path=Path("cat/1.jpg"), kind="empty", reason="is empty (0 bytes)")
        >>> str(bad)
        "'cat/1.jpg' is empty (0 bytes)"
    """

    path: Path
    kind: BadImageKind
    reason: str

    def __str__(self) -> str:
        return f"{str(self.path)!r} {self.reason}"

    def to_json(self) -> dict[str, str]:
        """Returns ``{"path", "kind", "reason"}``."""
        return {"path": str(self.path), "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetWarning:
    """Something about a data set that training survives but you should know.

    Args:
        kind: What it is about (see :data:`WarningKind`).
        message: One line naming the files (relative to the data folder),
            what hubtransfer does about it and what you can do.
        paths: The files concerned (empty for class-level warnings).
    """

    kind: WarningKind
    message: str
    paths: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Returns ``{"kind", "message", "paths"}``."""
        return {"kind": self.kind, "message": self.message, "paths": [str(p) for p in self.paths]}


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRecord:
    """What the check learnt about one image file.

    Args:
        path: The file.
        label: Its class name.
        size: Its size in bytes (0 if it cannot be read).
        sha256: The SHA-256 of its bytes, or ``None`` if it cannot be read.
        format: ``"JPEG"``, ``"PNG"``, ``"GIF"`` or ``"BMP"`` by content, or
            ``None`` if it is none of them.
        width: Width in pixels as stored (before EXIF orientation), if known.
        height: Height in pixels as stored, if known.
        colour: ``"grey"``, ``"grey+alpha"``, ``"RGB"``, ``"RGBA"``,
            ``"palette"``, ``"CMYK"``, ``"YCCK"``, or ``None`` if unknown.
        bit_depth: Bits per channel (8, or 16 for some PNGs), if known.
        frames: Frames of an animation (1 for a still image).
        orientation: EXIF orientation, 1 (upright) to 8.
        transparency: Whether it has an alpha channel or transparent colour.
        subset: ``"train"`` or ``"validation"`` in the split training would
            make, or ``None`` for unusable files (or with no validation).
        usable: Whether training can use it (it is not among the bad files).
    """

    path: Path
    label: str
    size: int
    sha256: str | None
    format: str | None
    width: int | None = None
    height: int | None = None
    colour: str | None = None
    bit_depth: int | None = None
    frames: int = 1
    orientation: int = 1
    transparency: bool = False
    subset: Subset | None = None
    usable: bool = True

    def to_json(self) -> dict[str, Any]:
        """Returns the record as a JSON-serialisable dict."""
        return {
            "path": str(self.path),
            "label": self.label,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "colour": self.colour,
            "bit_depth": self.bit_depth,
            "frames": self.frames,
            "orientation": self.orientation,
            "transparency": self.transparency,
            "subset": self.subset,
            "usable": self.usable,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassSummary:
    """Counts for one class.

    Args:
        name: The class name.
        images: Image files found in its folder.
        bad: Files among them that training cannot use.
        duplicates: Usable files identical to an earlier one of the data set
            (what :func:`fix_into` removes).
        train: Usable files in the training part of the split.
        validation: Usable files in the validation part.
    """

    name: str
    images: int
    bad: int
    duplicates: int
    train: int
    validation: int

    @property
    def usable(self) -> int:
        """Files training can use (``images - bad``)."""
        return self.images - self.bad

    def to_json(self) -> dict[str, Any]:
        """Returns the counts as a dict, with ``usable``."""
        return {
            "name": self.name,
            "images": self.images,
            "usable": self.usable,
            "bad": self.bad,
            "duplicates": self.duplicates,
            "train": self.train,
            "validation": self.validation,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetReport:
    """The result of :func:`check_dataset`.

    Args:
        root: The data folder.
        classes: Counts per class, in class order.
        images: One record per image file, in the scan's order.
        bad_files: Files training cannot use.
        warnings: Everything else worth knowing, most serious kind first
            (the order of :data:`WarningKind`), files in scan order.
        skipped: Files and folders the scan passed over (hidden files, other
            extensions, files outside class folders).
        validation: The validation fraction the split was made with.
        seed: The seed the split was made with.
        min_size: Images with a side under this were flagged ``too small``.
        max_pixels: The pixel limit applied.
        imbalance_threshold: Largest over smallest class ratio flagged.

    Example:
        >>> import hubtransfer
        >>> report = hubtransfer.check_dataset("data/flowers")  # doctest: +SKIP
        >>> print(report.format())  # doctest: +SKIP
        >>> report.ok, [str(bad) for bad in report.bad_files]  # doctest: +SKIP
        (False, ["'data/flowers/daisy/3.jpg' is empty (0 bytes)"])
    """

    root: Path
    classes: tuple[ClassSummary, ...]
    images: tuple[ImageRecord, ...]
    bad_files: tuple[BadImage, ...]
    warnings: tuple[DatasetWarning, ...]
    skipped: tuple[SkippedFile, ...] = ()
    validation: float = 0.2
    seed: int = 0
    min_size: int = 32
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    imbalance_threshold: float = 3.0

    @property
    def ok(self) -> bool:
        """Whether training can use every file (there are no bad files)."""
        return not self.bad_files

    @property
    def usable_paths(self) -> tuple[Path, ...]:
        """The files training can use, in scan order."""
        return tuple(record.path for record in self.images if record.usable)

    def warnings_of(self, kind: WarningKind) -> tuple[DatasetWarning, ...]:
        """The warnings of one kind."""
        return tuple(warning for warning in self.warnings if warning.kind == kind)

    def to_json(self, *, images: bool = False) -> dict[str, Any]:
        """Returns the report as a JSON-serialisable dict.

        Args:
            images: Include one record per image (large for big data sets).
        """
        data: dict[str, Any] = {
            "format": _REPORT_FORMAT,
            "version": _FORMAT_VERSION,
            "root": str(self.root),
            "ok": self.ok,
            "settings": {
                "validation": self.validation,
                "seed": self.seed,
                "min_size": self.min_size,
                "max_pixels": self.max_pixels,
                "imbalance_threshold": self.imbalance_threshold,
            },
            "totals": {
                "images": len(self.images),
                "usable": sum(c.usable for c in self.classes),
                "bad": len(self.bad_files),
                "warnings": len(self.warnings),
                "skipped": len(self.skipped),
            },
            "classes": [summary.to_json() for summary in self.classes],
            "bad_files": [bad.to_json() for bad in self.bad_files],
            "warnings": [warning.to_json() for warning in self.warnings],
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
        }
        if images:
            data["images"] = [record.to_json() for record in self.images]
        return data

    def format(self, *, limit: int = _SHOWN) -> str:
        """The report as text for people: a class table, bad files, warnings by kind.

        Args:
            limit: Files listed per kind of problem before ``... and N more``.
        """
        total = len(self.images)
        usable = sum(summary.usable for summary in self.classes)
        lines = [
            f"Checked {total:,} images in {len(self.classes)} classes in {str(self.root)!r}: "
            f"{usable:,} usable, {len(self.bad_files):,} unusable, "
            f"{len(self.warnings):,} warnings.",
            "",
        ]
        width = max([len("class"), *(len(summary.name) for summary in self.classes)])
        lines.append(
            f"{'class':<{width}}  {'images':>7}  {'unusable':>8}  {'duplicates':>10}  "
            f"{'train':>7}  {'validation':>10}"
        )
        for summary in self.classes:
            lines.append(
                f"{summary.name:<{width}}  {summary.images:>7,}  {summary.bad:>8,}  "
                f"{summary.duplicates:>10,}  {summary.train:>7,}  {summary.validation:>10,}"
            )
        if self.bad_files:
            lines += ["", f"Unusable files ({len(self.bad_files):,}): training cannot read them."]
            lines += [
                f"  {self._relative(bad.path)!r} {bad.reason}" for bad in self.bad_files[:limit]
            ]
            if len(self.bad_files) > limit:
                lines.append(f"  ... and {len(self.bad_files) - limit:,} more")
        if self.warnings:
            lines += ["", f"Warnings ({len(self.warnings):,}):"]
            kinds = list(dict.fromkeys(warning.kind for warning in self.warnings))
            for kind in kinds:
                group = self.warnings_of(kind)
                lines.append(f"  {kind} ({len(group):,}):")
                lines += [f"    {warning.message}" for warning in group[:limit]]
                if len(group) > limit:
                    lines.append(f"    ... and {len(group) - limit:,} more")
        lines.append("")
        if self.bad_files or any(w.kind in _FIXABLE for w in self.warnings):
            lines.append(
                "To train on a cleaned copy (the source is not changed): "
                f"hubtransfer check {str(self.root)!r} --fix-into CLEAN_DIR"
            )
        else:
            lines.append("Training can use every file.")
        return "\n".join(lines)

    def _relative(self, path: Path) -> str:
        return _relative(path, self.root)


@dataclass(frozen=True, slots=True, kw_only=True)
class FixAction:
    """What :func:`fix_into` did with one file.

    Args:
        source: The file in the data folder.
        target: The file written in the output folder (``None`` if dropped).
        action: ``"copied"`` (bytes unchanged, perhaps under a new
            extension), ``"converted"`` (decoded and encoded again) or
            ``"dropped"``.
        reason: Why it was converted or dropped, or renamed; empty for a
            plain copy.
    """

    source: Path
    target: Path | None
    action: Literal["copied", "converted", "dropped"]
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Returns ``{"source", "target", "action", "reason"}``."""
        return {
            "source": str(self.source),
            "target": None if self.target is None else str(self.target),
            "action": self.action,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FixResult:
    """What :func:`fix_into` wrote.

    Args:
        source: The data folder read.
        out_dir: The folder written.
        actions: One action per image file of the source, in scan order.
    """

    source: Path
    out_dir: Path
    actions: tuple[FixAction, ...] = field(default=())

    def _of(self, action: str) -> tuple[FixAction, ...]:
        return tuple(a for a in self.actions if a.action == action)

    @property
    def copied(self) -> tuple[FixAction, ...]:
        """Files copied unchanged (perhaps renamed)."""
        return self._of("copied")

    @property
    def converted(self) -> tuple[FixAction, ...]:
        """Files decoded and written again."""
        return self._of("converted")

    @property
    def dropped(self) -> tuple[FixAction, ...]:
        """Files left out."""
        return self._of("dropped")

    def to_json(self) -> dict[str, Any]:
        """Returns the result as a JSON-serialisable dict."""
        return {
            "format": _FIX_FORMAT,
            "version": _FORMAT_VERSION,
            "source": str(self.source),
            "out_dir": str(self.out_dir),
            "copied": len(self.copied),
            "converted": len(self.converted),
            "dropped": len(self.dropped),
            "actions": [action.to_json() for action in self.actions],
        }

    def format(self, *, limit: int = _SHOWN) -> str:
        """A summary for people: counts, then the converted and dropped files."""
        lines = [
            f"Wrote {len(self.copied) + len(self.converted):,} images to {str(self.out_dir)!r}: "
            f"{len(self.copied):,} copied, {len(self.converted):,} converted; "
            f"{len(self.dropped):,} dropped. {str(self.source)!r} is unchanged."
        ]
        for title, group in (("Converted", self.converted), ("Dropped", self.dropped)):
            if group:
                lines.append(f"{title}:")
                lines += [
                    f"  {_relative(a.source, self.source)!r}: {a.reason}" for a in group[:limit]
                ]
                if len(group) > limit:
                    lines.append(f"  ... and {len(group) - limit:,} more")
        return "\n".join(lines)


_WARNING_ORDER: Final = {kind: rank for rank, kind in enumerate(get_args(WarningKind))}
_FIXABLE: Final = frozenset(
    {
        "extension mismatch",
        "rotated",
        "CMYK",
        "16-bit",
        "palette",
        "transparency",
        "animated",
        "duplicate",
        "duplicate across classes",
        "split leak",
    }
)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# Examining one file -------------------------------------------------------------------


class _Decoder:
    """Decodes encoded images in full, from many threads, as training decodes them."""

    def __init__(self, max_pixels: int | None) -> None:
        self.max_pixels = max_pixels
        self._preprocessor = Preprocessor(
            PreprocessingContract(input_size=(1, 1)), max_pixels=max_pixels
        )
        self._shape: Any = None
        self._pixels: Any = None

    def _functions(self) -> tuple[Any, Any]:
        if self._shape is None:
            preprocessor = self._preprocessor
            signature = [tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64)]
            # Concrete functions, traced once here: calling them from many threads is safe.
            self._shape = tf.function(
                lambda encoded, orientation: tf.shape(preprocessor._decode(encoded, orientation)),
                input_signature=signature,
                autograph=False,
            ).get_concrete_function()
            self._pixels = tf.function(
                lambda encoded, orientation: _rgb_or_grey(
                    preprocessor._decode(encoded, orientation, channels=0)
                ),
                input_signature=signature,
                autograph=False,
            ).get_concrete_function()
        return self._shape, self._pixels

    def prepare(self) -> None:
        """Traces the functions before threads call them."""
        self._functions()

    def problem(self, data: bytes) -> str | None:
        """Why these bytes cannot be decoded in full, or ``None``."""
        shape, _ = self._functions()
        try:
            # Orientation 1: turning the pixels cannot make a decodable image undecodable.
            shape(tf.constant(data, tf.string), tf.constant(1, tf.int64))
        except tf.errors.OpError as error:
            return (
                f"could not be decoded ({_op_error_reason(error)}); it is probably truncated "
                "or damaged"
            )
        return None

    def upright_pixels(self, data: bytes, orientation: int) -> Any:
        """uint8 ``[H, W, 1 or 3]``: upright, 8-bit, grey kept grey, alpha dropped."""
        _, pixels = self._functions()
        return pixels(tf.constant(data, tf.string), tf.constant(orientation, tf.int64))


def _rgb_or_grey(image: Any) -> Any:
    channels = tf.shape(image)[-1]
    return tf.cond(channels <= 2, lambda: image[..., :1], lambda: image[..., :3])


@dataclass(frozen=True, slots=True)
class _Examined:
    record: ImageRecord
    bad: BadImage | None
    info: _ImageInfo | None


def _examine(
    path: Path,
    label: str,
    decoder: _Decoder,
    known_good: Container[str] | None = None,
) -> _Examined:
    """Reads, hashes, inspects and decodes one file in full."""

    def failed(kind: BadImageKind, reason: str, **fields: Any) -> _Examined:
        record = ImageRecord(
            path=path,
            label=label,
            format=None,
            usable=False,
            **{"size": 0, "sha256": None, **fields},
        )
        return _Examined(record, BadImage(path=path, kind=kind, reason=reason), None)

    try:
        data = read_regular(path)
    except FileNotFoundError:
        return failed("missing", "does not exist (it was removed during the check?)")
    except IsADirectoryError:
        return failed("unreadable", "is a folder, not an image file")
    except SpecialFileError as error:
        return failed("unreadable", str(error.strerror))
    except OSError as error:
        return failed("unreadable", f"cannot be read ({error.strerror or error})")
    digest = hashlib.sha256(data).hexdigest()
    facts: dict[str, Any] = {"size": len(data), "sha256": digest}
    if not data:
        return failed("empty", "is empty (0 bytes)", **facts)
    problem = _header_problem(data[:_HEADER_BYTES])
    if problem is not None:
        kind: BadImageKind = "unsupported" if data.startswith(_MAGIC) else "not an image"
        return failed(kind, problem, **facts)
    info = _inspect(_bytes_reader(data))
    if info is None:  # pragma: no cover - _header_problem accepts only what _inspect reads
        return failed("not an image", "is not a JPEG, PNG, GIF or BMP image", **facts)
    facts.update(
        format=info.format,
        width=info.width,
        height=info.height,
        colour=info.colour,
        bit_depth=info.bit_depth,
        frames=info.frames,
        orientation=info.orientation,
        transparency=info.transparency,
    )
    problem = _pixel_problem(info, decoder.max_pixels)
    if problem is not None:
        kind = "unsupported" if info.format == "JPEG" and info.bit_depth != 8 else "too large"
        return _Examined(
            ImageRecord(path=path, label=label, usable=False, **facts),
            BadImage(path=path, kind=kind, reason=problem),
            info,
        )
    if known_good is None or digest not in known_good:
        problem = decoder.problem(data)
        if problem is not None:
            return _Examined(
                ImageRecord(path=path, label=label, usable=False, **facts),
                BadImage(path=path, kind="damaged", reason=problem),
                info,
            )
    return _Examined(ImageRecord(path=path, label=label, **facts), None, info)


def _default_workers() -> int:
    # Two threads per core: one decodes while the other waits for the disk.
    return min(32, 2 * (os.cpu_count() or 1))


def _parallel_map(
    function: Callable[[_T], _R], items: Sequence[_T], workers: int | None
) -> list[_R]:
    count = workers or _default_workers()
    if count == 1 or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="hubtransfer-check") as pool:
        return list(pool.map(function, items))


# Public functions ---------------------------------------------------------------------


def find_bad_images(
    paths: Iterable[StrPath],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    known_good: Container[str] | None = None,
    workers: int | None = None,
) -> list[BadImage]:
    """Decodes every file in full, in parallel, and returns those training cannot use.

    A header check finds empty files and files that are not images; only a
    full decode finds a JPEG cut off at 90 %, which would otherwise stop
    training halfway through an epoch with a TensorFlow error that does not
    name the file.

    Args:
        paths: Image files.
        max_pixels: Files with more pixels are bad (``None``: no limit).
        known_good: SHA-256 digests (hex) of files known to decode, e.g. a
            :class:`~hubtransfer.FeatureStore` (which only holds features of
            decoded images): such files are hashed, not decoded again.
        workers: Threads; default twice the number of CPUs.

    Returns:
        The bad files, in the order given (empty if all are fine).

    Raises:
        InvalidParameterError: For a bad ``max_pixels`` or ``workers``.

    Example:
        >>> import pathlib, tempfile, hubtransfer
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "empty.jpg").touch()
        >>> (folder / "notes.jpg").write_text("not a photo")
        11
        >>> for bad in hubtransfer.find_bad_images(sorted(folder.iterdir())):
        ...     print(bad.path.name, bad.kind)
        empty.jpg empty
        notes.jpg not an image
    """
    limit = _max_pixels_argument(max_pixels, "find_bad_images")
    workers = _workers_argument(workers, "find_bad_images")
    files = [Path(path) for path in paths]
    decoder = _Decoder(limit)
    decoder.prepare()
    known = None if known_good is None else _Locked(known_good)
    examined = _parallel_map(lambda path: _examine(path, "", decoder, known), files, workers)
    return [item.bad for item in examined if item.bad is not None]


class _Locked:
    """A container asked from one thread at a time (a FeatureStore reloads its index on ``in``)."""

    def __init__(self, container: Container[str]) -> None:
        self._container = container
        self._lock = threading.Lock()

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._container


def bad_images_error(
    bad: Sequence[BadImage], total: int, *, training: bool = True
) -> ImageDecodeError:
    """The error listing every bad file and the ways out (what ``fit`` raises).

    Args:
        bad: The bad files, from :func:`find_bad_images`.
        total: How many files were checked.
        training: Whether the files were to be trained on (the message then
            offers ``on_bad_image='skip'``); else they were to be predicted.
    """
    listing = "\n".join(f"  {item}" for item in bad)
    purpose = "used for training" if training else "decoded"
    skip = ", or pass on_bad_image='skip' to train without them" if training else ""
    return ImageDecodeError(
        f"{len(bad)} of {total} image files cannot be {purpose}:\n{listing}\n"
        "Remove or replace them (`hubtransfer check DATA_DIR --fix-into CLEAN_DIR` writes a "
        f"cleaned copy of a data folder){skip}."
    )


def screen_collection(
    collection: ImageCollection,
    *,
    on_bad_image: Literal["raise", "skip"] = "raise",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    known_good: Container[str] | None = None,
    workers: int | None = None,
) -> tuple[ImageCollection, tuple[BadImage, ...]]:
    """Decodes every file of a collection before training; raises or drops the bad ones.

    Args:
        collection: The files to train (or validate) on.
        on_bad_image: ``"raise"``: one :class:`~hubtransfer.ImageDecodeError`
            listing every bad file. ``"skip"``: leave them out.
        max_pixels: See :func:`find_bad_images`.
        known_good: See :func:`find_bad_images`.
        workers: See :func:`find_bad_images`.

    Returns:
        The collection without the bad files (the same object if there are
        none), and the bad files.

    Raises:
        ImageDecodeError: With ``"raise"``, if any file is bad.
        DatasetError: With ``"skip"``, if every file of a class that had
            files is bad.
        InvalidParameterError: For a bad ``on_bad_image``.
    """
    if on_bad_image not in ("raise", "skip"):
        raise InvalidParameterError(
            f"The 'on_bad_image' parameter must be 'raise' or 'skip'. Got {on_bad_image!r} instead."
        )
    bad = find_bad_images(
        collection.paths, max_pixels=max_pixels, known_good=known_good, workers=workers
    )
    return apply_bad_images(collection, bad, on_bad_image=on_bad_image)


def apply_bad_images(
    collection: ImageCollection,
    bad: Sequence[BadImage],
    *,
    on_bad_image: Literal["raise", "skip"] = "raise",
) -> tuple[ImageCollection, tuple[BadImage, ...]]:
    """What :func:`screen_collection` does with the bad files it found: raise, or drop them."""
    if not bad:
        return collection, ()
    if on_bad_image == "raise":
        raise bad_images_error(bad, len(collection))
    bad_paths = {item.path for item in bad}
    kept = collection.subset(i for i, p in enumerate(collection.paths) if p not in bad_paths)
    before, after = collection.class_counts(), kept.class_counts()
    emptied = [name for name in collection.classes if before[name] and not after[name]]
    if emptied:
        raise DatasetError(
            f"Every image of the classes {emptied} is unusable, so they cannot be trained "
            f"even with on_bad_image='skip':\n"
            + "\n".join(f"  {item}" for item in bad)
            + "\nReplace the files, or remove the class folders."
        )
    return kept, tuple(bad)


def check_dataset(
    root: StrPath,
    *,
    validation: float = 0.2,
    seed: int = 0,
    min_size: int = 32,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    imbalance_threshold: float = 3.0,
    workers: int | None = None,
) -> DatasetReport:
    """Checks a class-folder data set the way training will read it.

    Every image file is read, hashed (SHA-256), its header inspected and its
    pixels decoded in full by the decoder training uses. The split is the one
    ``TransferClassifier(validation_split=validation, seed=seed).fit(root)``
    makes of the usable files, so ``split leak`` warnings name exactly the
    identical files that would sit on both sides of it.

    Args:
        root: A folder with one sub-folder of images per class.
        validation: The validation fraction training will use (0 for none).
        seed: The seed training will split with.
        min_size: Images with a side shorter than this many pixels are
            flagged ``too small`` (0 turns this off).
        max_pixels: Images with more pixels are unusable (``None``: no limit).
        imbalance_threshold: Flag the data set when its largest class has
            more than this many times the usable images of its smallest.
        workers: Threads reading and decoding files; default twice the
            number of CPUs.

    Returns:
        The report; :attr:`DatasetReport.ok` is true when training can use
        every file.

    Raises:
        DatasetError: If the folder is missing, holds no class folders, or a
            class folder holds no image files (as training would).
        InvalidParameterError: For a parameter out of range.

    Example:
        >>> import pathlib, tempfile, numpy as np, tensorflow as tf, hubtransfer
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for value, name in enumerate(["cat/1.png", "cat/2.png", "dog/1.png", "dog/2.jpg"]):
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     pixels = np.full((40, 40, 3), 60 * value, np.uint8)
        ...     _ = (root / name).write_bytes(tf.io.encode_png(pixels).numpy())
        >>> _ = (root / "dog/3.jpg").write_bytes(b"")
        >>> report = hubtransfer.check_dataset(root)
        >>> [(c.name, c.images, c.usable) for c in report.classes]
        [('cat', 2, 2), ('dog', 3, 2)]
        >>> [(bad.path.name, bad.reason) for bad in report.bad_files]
        [('3.jpg', 'is empty (0 bytes)')]
        >>> [(warning.kind, [path.name for path in warning.paths]) for warning in report.warnings]
        [('extension mismatch', ['2.jpg'])]
    """
    owner = "check_dataset"
    validation = _fraction_argument(validation, owner)
    seed = _seed_argument(seed, owner)
    min_size = _count_argument(min_size, "min_size", owner)
    limit = _max_pixels_argument(max_pixels, owner)
    threshold = _threshold_argument(imbalance_threshold, owner)
    workers = _workers_argument(workers, owner)
    collection = scan_image_folder(root)
    root_path = collection.root or Path(root)
    labels = collection.label_names
    decoder = _Decoder(limit)
    decoder.prepare()
    examined = _parallel_map(
        lambda index: _examine(collection.paths[index], labels[index], decoder),
        range(len(collection)),
        workers,
    )
    subsets = _split_subsets(collection, examined, validation=validation, seed=seed)
    records = tuple(_with_subset(item.record, subsets.get(item.record.path)) for item in examined)
    bad_files = tuple(item.bad for item in examined if item.bad is not None)
    warnings: list[DatasetWarning] = []
    for item in examined:
        if item.bad is None and item.info is not None:
            warnings += _file_warnings(item.record, item.info, root_path, min_size)
    warnings += _grey_warnings(records, root_path)
    duplicate_warnings, duplicate_counts = _duplicate_warnings(records, root_path)
    warnings += duplicate_warnings
    summaries = tuple(
        _class_summary(name, records, duplicate_counts.get(name, 0)) for name in collection.classes
    )
    warnings += _class_warnings(summaries, threshold)
    warnings += [
        _skipped_warning(skipped, root_path)
        for skipped in collection.skipped
        if skipped.reason != "hidden"
    ]
    warnings.sort(key=lambda warning: _WARNING_ORDER[warning.kind])
    return DatasetReport(
        root=root_path,
        classes=summaries,
        images=records,
        bad_files=bad_files,
        warnings=tuple(warnings),
        skipped=collection.skipped,
        validation=validation,
        seed=seed,
        min_size=min_size,
        max_pixels=limit,
        imbalance_threshold=threshold,
    )


def fix_into(
    source: DatasetReport | StrPath,
    out_dir: StrPath,
    *,
    drop_too_small: bool = False,
    jpeg_quality: int = 95,
    workers: int | None = None,
) -> FixResult:
    """Writes a clean copy of a data set; the source is never modified.

    In the copy:

    * unusable files are left out, and so is every identical copy of a file
      but the first (in class order, then path order; for identical files in
      two classes, the first class keeps it);
    * JPEGs that are CMYK or EXIF-rotated are decoded, turned upright and
      written as RGB (or greyscale) JPEGs at ``jpeg_quality``;
    * PNGs with 16 bits, a palette, transparency (dropped, as training
      drops it), an EXIF orientation or animation, and every GIF and BMP,
      are written as 8-bit RGB or greyscale PNGs, upright (first frame);
    * other files are copied byte for byte;
    * every file's extension names its content (``.jpg`` or ``.png``); a
      renamed file whose new name is taken gets ``-2``, ``-3``... added.

    The copy is written to a temporary folder beside ``out_dir`` and renamed
    into place when complete.

    Args:
        source: A :class:`DatasetReport` (its settings are kept), or a data
            folder, which is checked first with :func:`check_dataset`'s
            defaults.
        out_dir: The folder to create. It must not exist, or be empty, and
            must not lie inside the data folder.
        drop_too_small: Also leave out images flagged ``too small``.
        jpeg_quality: Quality of re-encoded JPEGs, 1 to 100.
        workers: Threads; default twice the number of CPUs.

    Returns:
        What was done with each file.

    Raises:
        InvalidParameterError: If ``out_dir`` exists and is not an empty
            folder, lies inside the data folder, or a parameter is invalid.
        DatasetError: If a file changed since the report was made (check
            again), or no usable image is left.

    Example:
        >>> import hubtransfer
        >>> report = hubtransfer.check_dataset("data/flowers")  # doctest: +SKIP
        >>> print(hubtransfer.fix_into(report, "data/flowers-clean").format())  # doctest: +SKIP
    """
    owner = "fix_into"
    if not isinstance(drop_too_small, bool):
        raise InvalidParameterError(
            f"The 'drop_too_small' parameter of {owner} must be a bool. "
            f"Got {drop_too_small!r} instead."
        )
    if (
        isinstance(jpeg_quality, bool)
        or not isinstance(jpeg_quality, int)
        or not 1 <= jpeg_quality <= 100
    ):
        raise InvalidParameterError(
            f"The 'jpeg_quality' parameter of {owner} must be an int from 1 to 100. "
            f"Got {jpeg_quality!r} instead."
        )
    workers = _workers_argument(workers, owner)
    report = source if isinstance(source, DatasetReport) else check_dataset(source)
    out = Path(out_dir)
    rule = WriteRule(
        kind=CLEAN_COPY,
        protected=[Protected(path=report.root, what="the data folder", inside=True)],
        action="write the cleaned copy to",
    )
    check_target(out, rule)
    plans = _plan(report, drop_too_small=drop_too_small)
    if not any(plan.target for plan in plans):
        raise DatasetError(
            f"No usable image is left in {str(report.root)!r} after leaving out bad files and "
            "duplicates; there is nothing to write."
        )
    decoder = _Decoder(report.max_pixels)
    decoder.prepare()
    write_folder(
        out,
        lambda staging: _parallel_map(
            lambda plan: _carry_out(plan, staging, decoder, jpeg_quality), plans, workers
        ),
        rule,
    )
    return FixResult(
        source=report.root,
        out_dir=out,
        actions=tuple(
            FixAction(
                source=plan.record.path,
                target=None if plan.target is None else out / plan.target,
                action=plan.action,
                reason=plan.reason,
            )
            for plan in plans
        ),
    )


# Check helpers ------------------------------------------------------------------------


def _with_subset(record: ImageRecord, subset: Subset | None) -> ImageRecord:
    return record if subset is None else replace(record, subset=subset)


def _split_subsets(
    collection: ImageCollection, examined: Sequence[_Examined], *, validation: float, seed: int
) -> dict[Path, Subset]:
    """Where each usable file lands in the split training makes of the usable files."""
    usable = [i for i, item in enumerate(examined) if item.bad is None]
    if not usable:
        return {}
    kept = collection.subset(usable)
    if validation <= 0:
        return dict.fromkeys(kept.paths, "train")
    split: DataSplit = stratified_split(kept, validation=validation, seed=seed)
    subsets: dict[Path, Subset] = dict.fromkeys(split.train.paths, "train")
    subsets.update(dict.fromkeys(split.validation.paths, "validation"))
    return subsets


def _file_warnings(
    record: ImageRecord, info: _ImageInfo, root: Path, min_size: int
) -> list[DatasetWarning]:
    name = repr(_relative(record.path, root))
    found: list[DatasetWarning] = []

    def add(kind: WarningKind, message: str) -> None:
        found.append(DatasetWarning(kind=kind, message=message, paths=(record.path,)))

    extension = record.path.suffix.lower()
    expected = _EXTENSION_FORMATS.get(extension)
    if expected is not None and expected != info.format:
        add(
            "extension mismatch",
            f"{name} is a {info.format} named {extension}. hubtransfer reads files by content, "
            "but other tools go by the name; fix_into renames it.",
        )
    if info.orientation != 1:
        add(
            "rotated",
            f"{name} has EXIF orientation {info.orientation} (stored "
            f"{_ORIENTATIONS[info.orientation]}). hubtransfer turns it upright; Keras and "
            "tf.io.decode_image do not. fix_into stores it upright.",
        )
    if info.colour in ("CMYK", "YCCK"):
        add(
            "CMYK",
            f"{name} is a {info.colour} JPEG. It is converted to RGB, without its colour "
            "profile, so colours may differ from other tools'. fix_into writes it as RGB.",
        )
    if info.bit_depth is not None and info.bit_depth > 8:
        add(
            "16-bit",
            f"{name} has {info.bit_depth} bits per channel; it is reduced to 8. fix_into "
            "writes it with 8.",
        )
    if info.colour == "palette":
        add(
            "palette",
            f"{name} is a palette ({info.format}) image; its colours are looked up in the "
            "palette. fix_into writes it as RGB.",
        )
    if info.transparency:
        add(
            "transparency",
            f"{name} has transparency. The alpha channel is dropped (as Keras and Pillow's "
            "convert('RGB') do), so transparent areas show the colour stored under them, "
            "often black. fix_into writes it without alpha.",
        )
    if info.frames > 1:
        add(
            "animated",
            f"{name} is animated ({info.frames} frames); only the first frame is used. "
            "fix_into keeps the first frame.",
        )
    if (
        min_size
        and info.width is not None
        and info.height is not None
        and min(info.width, info.height) < min_size
    ):
        add(
            "too small",
            f"{name} is {info.width} x {info.height} pixels, under min_size={min_size}; "
            "the backbone sees it blown up. Replace it with a larger image, or leave it "
            "out (fix_into(..., drop_too_small=True)).",
        )
    return found


def _is_grey(record: ImageRecord) -> bool:
    return record.colour in ("grey", "grey+alpha")


def _grey_warnings(records: Sequence[ImageRecord], root: Path) -> list[DatasetWarning]:
    """Greyscale images among colour ones (a wholly grey data set is no surprise)."""
    usable = [record for record in records if record.usable and record.colour is not None]
    grey = [record for record in usable if _is_grey(record)]
    if not grey or len(grey) == len(usable):
        return []
    return [
        DatasetWarning(
            kind="grey",
            message=(
                f"{_relative(record.path, root)!r} is greyscale, among "
                f"{len(usable) - len(grey):,} colour images; its grey is repeated into RGB. "
                "If colour tells your classes apart, replace it with a colour image."
            ),
            paths=(record.path,),
        )
        for record in grey
    ]


def _duplicate_warnings(
    records: Sequence[ImageRecord], root: Path
) -> tuple[list[DatasetWarning], dict[str, int]]:
    """Warnings for identical usable files, and the removable copies per class."""
    groups: dict[str, list[ImageRecord]] = {}
    for record in records:
        if record.usable and record.sha256 is not None:
            groups.setdefault(record.sha256, []).append(record)
    warnings: list[DatasetWarning] = []
    copies: dict[str, int] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        for record in group[1:]:
            copies[record.label] = copies.get(record.label, 0) + 1
        paths = tuple(record.path for record in group)
        names = ", ".join(repr(_relative(path, root)) for path in paths)
        labels = list(dict.fromkeys(record.label for record in group))
        if len(labels) > 1:
            warnings.append(
                DatasetWarning(
                    kind="duplicate across classes",
                    message=(
                        f"{len(group)} identical files are labelled {labels}: {names}. At "
                        "most one label is right; delete the wrong copies (fix_into keeps "
                        "the first)."
                    ),
                    paths=paths,
                )
            )
        else:
            warnings.append(
                DatasetWarning(
                    kind="duplicate",
                    message=(
                        f"{len(group)} identical files in {labels[0]!r}: {names}. They count "
                        f"{len(group)} times in training; fix_into keeps the first."
                    ),
                    paths=paths,
                )
            )
        sides = {record.subset for record in group}
        if {"train", "validation"} <= sides:
            placed = ", ".join(
                f"{_relative(record.path, root)!r} ({record.subset})" for record in group
            )
            warnings.append(
                DatasetWarning(
                    kind="split leak",
                    message=(
                        f"Identical files would be on both sides of the train/validation "
                        f"split: {placed}. Validation accuracy would be overstated; "
                        "fix_into keeps one copy."
                    ),
                    paths=paths,
                )
            )
    return warnings, copies


def _class_summary(name: str, records: Sequence[ImageRecord], duplicates: int) -> ClassSummary:
    mine = [record for record in records if record.label == name]
    return ClassSummary(
        name=name,
        images=len(mine),
        bad=sum(not record.usable for record in mine),
        duplicates=duplicates,
        train=sum(record.subset == "train" for record in mine),
        validation=sum(record.subset == "validation" for record in mine),
    )


def _class_warnings(summaries: Sequence[ClassSummary], threshold: float) -> list[DatasetWarning]:
    warnings = [
        DatasetWarning(
            kind="empty class",
            message=(
                f"Class {summary.name!r} has no usable image (all {summary.images} are "
                "unusable); training needs at least one. Replace the files."
            ),
        )
        for summary in summaries
        if summary.usable == 0
    ]
    counted = [summary for summary in summaries if summary.usable > 0]
    if len(counted) >= 2:
        largest = max(counted, key=lambda summary: summary.usable)
        smallest = min(counted, key=lambda summary: summary.usable)
        ratio = largest.usable / smallest.usable
        if ratio > threshold:
            warnings.append(
                DatasetWarning(
                    kind="imbalance",
                    message=(
                        f"The classes are imbalanced: {largest.name!r} has {largest.usable:,} "
                        f"usable images, {smallest.name!r} {smallest.usable:,} ({ratio:.1f}x, "
                        f"over {threshold:g}x). Add images to the small classes, or train "
                        "with class_weight='balanced'."
                    ),
                )
            )
    return warnings


def _skipped_warning(skipped: SkippedFile, root: Path) -> DatasetWarning:
    name = repr(_relative(skipped.path, root))
    if skipped.reason == "outside class folders":
        message = (
            f"{name} lies directly in the data folder, outside every class folder, so it is "
            "not used. Move it into its class's folder."
        )
    else:
        extensions = ", ".join(sorted(_EXTENSION_FORMATS))
        message = (
            f"{name} was skipped: its extension is not one hubtransfer reads ({extensions}). "
            "If it is an image, convert it to JPEG or PNG."
        )
    return DatasetWarning(kind="skipped", message=message, paths=(skipped.path,))


# Fix helpers --------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    record: ImageRecord
    action: Literal["copied", "converted", "dropped"]
    reason: str
    output_format: str | None = None
    target: Path | None = None  # relative to the output folder


def _conversions(record: ImageRecord) -> list[str]:
    """What must change for training and other tools to read the file alike."""
    changes: list[str] = []
    if record.format in ("GIF", "BMP"):
        changes.append(f"{record.format} to PNG")
    if record.orientation != 1:
        changes.append(f"EXIF orientation {record.orientation} applied")
    if record.colour in ("CMYK", "YCCK"):
        changes.append(f"{record.colour} to RGB")
    if record.format == "PNG":
        if record.bit_depth != 8 and record.colour != "palette":
            changes.append(f"{record.bit_depth}-bit to 8-bit")
        if record.colour == "palette":
            changes.append("palette to RGB")
        if record.transparency:
            changes.append("transparency dropped")
        if record.frames > 1:
            changes.append(f"first of {record.frames} frames kept")
    return changes


def _plan(report: DatasetReport, *, drop_too_small: bool) -> list[_Plan]:
    bad = {item.path: item for item in report.bad_files}
    small = {path for w in report.warnings_of("too small") for path in w.paths}
    first_of: dict[str, Path] = {}
    plans: list[_Plan] = []
    for record in report.images:
        if record.path in bad:
            plans.append(_Plan(record, "dropped", f"unusable: {bad[record.path].reason}"))
            continue
        original = first_of.setdefault(record.sha256 or "", record.path)
        if original != record.path:
            plans.append(
                _Plan(record, "dropped", f"identical to {_relative(original, report.root)!r}")
            )
            continue
        if drop_too_small and record.path in small:
            plans.append(
                _Plan(
                    record,
                    "dropped",
                    f"too small ({record.width} x {record.height} pixels, under {report.min_size})",
                )
            )
            continue
        changes = _conversions(record)
        output = "JPEG" if record.format == "JPEG" else "PNG"
        plans.append(
            _Plan(record, "converted" if changes else "copied", "; ".join(changes), output)
        )
    # Files that keep their name are placed first, so a renamed file never takes a name
    # an original file already has.
    taken: set[str] = set()
    relative = {id(plan): plan.record.path.relative_to(report.root) for plan in plans}
    kept = [plan for plan in plans if plan.output_format is not None]
    renamed: list[_Plan] = []
    for plan in kept:
        path = relative[id(plan)]
        if _EXTENSION_FORMATS.get(path.suffix.lower()) == plan.output_format:
            plan.target = path
            taken.add(path.as_posix().lower())
        else:
            renamed.append(plan)
    for plan in renamed:
        path = relative[id(plan)]
        suffix = ".jpg" if plan.output_format == "JPEG" else ".png"
        target = path.with_suffix(suffix)
        number = 2
        while target.as_posix().lower() in taken:
            target = path.with_name(f"{path.stem}-{number}{suffix}")
            number += 1
        taken.add(target.as_posix().lower())
        plan.target = target
        note = f"renamed from {path.suffix or '(no extension)'} to {suffix}"
        plan.reason = f"{plan.reason}; {note}" if plan.reason else note
    return plans


def _carry_out(plan: _Plan, out: Path, decoder: _Decoder, jpeg_quality: int) -> None:
    if plan.target is None:
        return
    record = plan.record
    try:
        data = read_regular(record.path)
    except OSError as error:
        raise DatasetError(
            f"Cannot read {str(record.path)!r} ({error.strerror or error}); it changed since "
            "the check. Check the data folder again."
        ) from error
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise DatasetError(
            f"{str(record.path)!r} changed since the data set was checked. Check it again "
            "(check_dataset) and pass the new report to fix_into."
        )
    target = out / plan.target
    target.parent.mkdir(parents=True, exist_ok=True)
    if plan.action == "converted":
        pixels = decoder.upright_pixels(data, record.orientation)
        if plan.output_format == "JPEG":
            data = tf.io.encode_jpeg(pixels, quality=jpeg_quality).numpy()
        else:
            data = tf.io.encode_png(pixels).numpy()
    target.write_bytes(data)


# Parameter checks -----------------------------------------------------------------------


def _fraction_argument(value: object, owner: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= float(value) < 1.0
    ):
        raise InvalidParameterError(
            f"The 'validation' parameter of {owner} must be a float in [0, 1). "
            f"Got {value!r} instead."
        )
    return float(value)


def _seed_argument(value: object, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(
            f"The 'seed' parameter of {owner} must be a non-negative int. Got {value!r} instead."
        )
    return value


def _count_argument(value: object, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be a non-negative int. Got {value!r} instead."
        )
    return value


def _threshold_argument(value: object, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1.0:
        raise InvalidParameterError(
            f"The 'imbalance_threshold' parameter of {owner} must be a number of at least 1. "
            f"Got {value!r} instead."
        )
    return float(value)


def _workers_argument(value: object, owner: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(
            f"The 'workers' parameter of {owner} must be a positive int or None. "
            f"Got {value!r} instead."
        )
    return value
