"""Writing a whole folder for a user: what may be replaced, and how it is replaced.

Every folder hubtransfer writes at a path a user names (a saved model,
``hubtransfer train --out``, an export, ``fix_into``'s cleaned copy) is
written by :func:`write_folder`, under one rule:

* a path that does not exist, or an empty folder, may be written;
* an existing folder may be replaced only if it is **provably ours**: it
  holds the marker file of what is being written (``hubtransfer.json`` of a
  saved model, ``hubtransfer-export.json`` of an export), the marker reads
  as one, and every file in the folder is one the marker lists. A user's
  notes, a data folder, or a model folder someone added files to is refused;
* ``force=True`` (``--force``) replaces any other folder, except that nothing,
  forced or not, ever replaces a folder that **holds** something protected
  (the training data, the model being exported, the cache, the current
  folder, the home folder, the file system's root) or writes **inside** the
  training data or inside another hubtransfer model or export (whose
  checksums an extra file would break).

The new folder is written in full inside a hidden work folder beside the
target (``.NAME.<32 hex>.tmp/folder``, next to the writer's
``.hubtransfer-partial`` marker) and renamed into place (atomically swapped
with the old one on Linux, which then lies in the work folder until it is
removed), so the target holds the old folder or the new one at every
instant. The writer holds a lock on its work folder while it works; a later
write to the same target removes the work folders whose lock is free (their
writer was killed) and that are provably ours: they hold the marker, or (left
by earlier versions) are a complete folder of the kind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._cache import cache_dir, replace_directory
from ._exceptions import InvalidParameterError
from ._files import is_write_fault, open_regular
from ._seams import pause_point

__all__ = [
    "CLEAN_COPY",
    "EXPORT_FOLDER",
    "MODEL_FOLDER",
    "FolderKind",
    "Protected",
    "WriteRule",
    "check_target",
    "clean_stale_partials",
    "is_owned",
    "write_folder",
]

PARTIAL_MARKER: Final = ".hubtransfer-partial"
_MARKER_LIMIT: Final = 64 << 20
_LISTED: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderKind:
    """A kind of folder hubtransfer writes.

    Attributes:
        noun: What it is, for messages ("a saved model").
        marker: The file that marks it (``None``: it carries none, so only a
            missing or empty folder may be written).
        format: The marker's ``"format"`` value.
    """

    noun: str
    marker: str | None
    format: str | None


MODEL_FOLDER: Final = FolderKind(
    noun="a saved hubtransfer model", marker="hubtransfer.json", format="hubtransfer.model"
)
EXPORT_FOLDER: Final = FolderKind(
    noun="a hubtransfer export", marker="hubtransfer-export.json", format="hubtransfer.export"
)
CLEAN_COPY: Final = FolderKind(noun="a cleaned data copy", marker=None, format=None)
_MARKED: Final = (MODEL_FOLDER, EXPORT_FOLDER)


@dataclass(frozen=True, slots=True, kw_only=True)
class Protected:
    """A path a write must leave alone.

    Attributes:
        path: The folder (or file).
        what: What it is, for messages ("the training data").
        inside: Whether writing inside it is refused too (not only
            replacing a folder that holds it).
    """

    path: Path
    what: str
    inside: bool = False


def _absolute(path: str | os.PathLike[str]) -> Path:
    # abspath, not resolve: a symbolic link at the target must stay visible as one.
    return Path(os.path.abspath(os.fspath(path)))


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _marker_files(folder: Path, kind: FolderKind) -> set[str] | None:
    """The files ``kind``'s marker in ``folder`` lists, or None if there is no intact marker."""
    if kind.marker is None:
        return None
    try:
        with open_regular(folder / kind.marker, limit=_MARKER_LIMIT) as stream:
            data = json.loads(stream.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != kind.format:
        return None
    files = data.get("files")
    if not isinstance(files, dict) or not all(isinstance(name, str) for name in files):
        return None
    return set(files)


def _entries(folder: Path) -> Iterator[tuple[str, bool]]:
    """Every entry under ``folder``: (relative posix name, is a real folder); links not followed."""
    for directory, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(directory)
        for name in dirnames:
            path = here / name
            yield path.relative_to(folder).as_posix(), not path.is_symlink()
        for name in filenames:
            yield (here / name).relative_to(folder).as_posix(), False


def is_owned(folder: Path, kind: FolderKind, *, extra: Sequence[str] = ()) -> bool:
    """Whether ``folder`` is a complete folder of ``kind``: an intact marker listing every file.

    Args:
        folder: The folder.
        kind: What it should be.
        extra: Names (relative) that may be present without being listed.
    """
    listed = _marker_files(folder, kind)
    if listed is None:
        return False
    allowed = listed | set(extra) | {kind.marker}
    return all(is_folder or name in allowed for name, is_folder in _entries(folder))


def _kind_at(folder: Path) -> FolderKind | None:
    for kind in _MARKED:
        if kind.marker is not None and (folder / kind.marker).is_file() and is_owned(folder, kind):
            return kind
    return None


def _first_entries(folder: Path) -> list[str]:
    names: list[str] = []
    for name, is_folder in _entries(folder):
        if not is_folder:
            names.append(repr(str(folder / name)))
        if len(names) >= _LISTED:
            break
    return names


def _always_protected() -> list[Protected]:
    places = [
        Protected(path=Path(os.path.abspath(os.sep)), what="the root of the file system"),
        Protected(path=_absolute(Path.cwd()), what="the current folder"),
        Protected(path=_absolute(cache_dir()), what="hubtransfer's cache folder"),
    ]
    with contextlib.suppress(RuntimeError, KeyError):
        places.append(Protected(path=_absolute(Path.home()), what="the home folder"))
    return places


def _holds(folder: Path, path: Path) -> bool:
    return folder == path or folder in path.parents


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteRule:
    """What a write may replace, and how its messages word things.

    Attributes:
        kind: What is written.
        protected: Paths the write must leave alone, besides the ones always
            protected (root, current and home folders, the cache).
        force: Replace a folder that is not provably ours (never a protected one).
        action: The verb phrase for messages ("save the model to").
        force_hint: How the caller forces ("pass force=True", "pass --force").
    """

    kind: FolderKind
    protected: Sequence[Protected] = ()
    force: bool = False
    action: str = "save the model to"
    force_hint: str = "pass force=True"


def check_target(path: str | os.PathLike[str], rule: WriteRule) -> Path:
    """Checks that ``rule`` lets a folder be written at ``path``; returns the path, absolute.

    Raises:
        InvalidParameterError: If the path may not be written, saying why and
            what to do.
    """
    kind, protected, force = rule.kind, rule.protected, rule.force
    action, force_hint = rule.action, rule.force_hint
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(f"Cannot {action} {path!r}: it is not a folder path.")
    target = _absolute(path)
    shown = repr(os.fspath(path))
    real = _real(target)
    for place in (*_always_protected(), *protected):
        guarded = _absolute(place.path)
        for candidate in {target, real}:
            for guarded_path in {guarded, _real(guarded)}:
                if _holds(candidate, guarded_path):
                    relation = (
                        "is" if candidate == guarded_path else f"holds {str(guarded_path)!r},"
                    )
                    raise InvalidParameterError(
                        f"Cannot {action} {shown}: it {relation} {place.what}, which hubtransfer "
                        "never replaces (not even when forced). Choose a new folder outside it."
                    )
                if place.inside and guarded_path in candidate.parents:
                    raise InvalidParameterError(
                        f"Cannot {action} {shown}: it lies inside {place.what} "
                        f"({str(guarded_path)!r}), which must not change. Choose a folder "
                        "outside it."
                    )
    for ancestor in real.parents:
        owner = _kind_at(ancestor)
        if owner is not None:
            raise InvalidParameterError(
                f"Cannot {action} {shown}: it lies inside {owner.noun} ({str(ancestor)!r}); "
                "an extra file there would make it fail its checksums. Choose a folder outside it."
            )
    if target.is_symlink():
        raise InvalidParameterError(
            f"Cannot {action} {shown}: it is a symbolic link (to {os.readlink(target)!r}). "
            "Pass the real folder, or a new path."
        )
    if not target.exists():
        return target
    if not target.is_dir():
        raise InvalidParameterError(
            f"Cannot {action} {shown}: it exists and is not a folder. Choose another path."
        )
    try:
        empty = not any(target.iterdir())
    except OSError as error:
        raise InvalidParameterError(
            f"Cannot {action} {shown}: the folder cannot be read ({error.strerror or error})."
        ) from error
    if empty or force or is_owned(target, kind):
        return target
    if kind.marker is None:
        reason = f"{kind.noun} is only written to a new or empty folder"
    elif (target / kind.marker).is_file() and _marker_files(target, kind) is not None:
        reason = (
            f"it holds {kind.noun}, but also files its {kind.marker} does not list "
            f"(e.g. {', '.join(_unlisted(target, kind))}), which would be lost"
        )
    else:
        reason = (
            f"it is not {kind.noun} (it holds {', '.join(_first_entries(target))}...), "
            "and only such a folder is replaced"
        )
    advice = "Choose a new or empty folder" + (
        "." if kind.marker is None else f", or {force_hint} to replace it anyway."
    )
    raise InvalidParameterError(f"Cannot {action} {shown}: {reason}. {advice}")


def _unlisted(folder: Path, kind: FolderKind) -> list[str]:
    listed = (_marker_files(folder, kind) or set()) | {kind.marker}
    names = [
        repr(str(folder / name))
        for name, is_folder in _entries(folder)
        if not is_folder and name not in listed
    ]
    return names[:_LISTED]


_PARTIAL_NAME: Final = r"\.{name}\.[0-9a-f]{{32}}\.(?:tmp|old)"


@contextlib.contextmanager
def _locked(folder: Path, *, blocking: bool) -> Iterator[bool]:
    """Holds an exclusive lock on a folder; yields whether it was taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, so nothing is proven stale
        yield blocking
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)


def clean_stale_partials(target: Path, kind: FolderKind) -> list[Path]:
    """Removes the temporary folders killed writes to ``target`` left; returns them.

    A temporary folder is removed only if its name is one :func:`write_folder`
    gives, no live writer holds its lock, and it is provably ours: it holds
    the writer's partial marker, or it is a complete folder of ``kind``.
    """
    pattern = re.compile(_PARTIAL_NAME.format(name=re.escape(target.name)))
    removed: list[Path] = []
    try:
        candidates = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return removed
    for candidate in candidates:
        if candidate.is_symlink() or not candidate.is_dir():
            continue
        with _locked(candidate, blocking=False) as free:
            if not free:
                continue
            ours = (candidate / PARTIAL_MARKER).is_file() or (
                kind.marker is not None and is_owned(candidate, kind)
            )
            if ours:
                shutil.rmtree(candidate, ignore_errors=True)
                removed.append(candidate)
    return removed


def write_folder(
    path: str | os.PathLike[str], write: Callable[[Path], Any], rule: WriteRule
) -> Path:
    """Writes a folder at ``path`` atomically, if ``rule`` lets it replace what is there.

    ``write`` fills the empty temporary folder it is given. The target is
    checked (:func:`check_target`) before the write and again just before the
    rename, so a folder that changed meanwhile is not replaced.

    Returns:
        The folder, as given.

    Raises:
        InvalidParameterError: If the target may not be written.
    """
    target = check_target(path, rule)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_partials(target, rule.kind)
    # The work folder holds the writer's marker and, beside it, the folder being written:
    # whatever moment the process dies at, what is left beside the target is marked as ours.
    work = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    work.mkdir()
    try:
        with _locked(work, blocking=True):
            (work / PARTIAL_MARKER).write_text(f"{os.getpid()}\n", encoding="utf8")
            content = work / "folder"
            content.mkdir()
            try:
                write(content)
            except OSError as error:
                if not is_write_fault(error) or isinstance(error, InvalidParameterError):
                    raise
                # Named by the folder the user gave, not the hidden one it was written in.
                raise type(error)(error.errno, error.strerror, os.fspath(path)) from error
            pause_point("folder:written")
            check_target(path, rule)
            replace_directory(content, target, on_swapped=lambda _: pause_point("folder:replaced"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Path(path)
