"""The on-disk cache: where it lives, and how entries are built without half states.

Every entry is built in a temporary sibling folder and renamed into place, so
a reader sees either no entry or a complete one. A lock file serialises
builders of the same entry across processes; a builder that loses a race
simply uses the winner's entry.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Final, Generic, TypeVar

from ._exceptions import BrokenCacheEntryError
from ._files import sha256_regular

__all__ = [
    "build_atomically",
    "replace_directory",
    "cache_dir",
    "check_savedmodel_dir",
    "hub_cache_dir",
    "is_savedmodel_dir",
]

CACHE_ENV: Final = "HUBTRANSFER_CACHE_DIR"
TFHUB_CACHE_ENV: Final = "TFHUB_CACHE_DIR"

_T = TypeVar("_T")


def file_sha256(path: str | os.PathLike[str], *, limit: int | None = None) -> str:
    """The SHA-256 of a regular file's bytes, as hex, read a megabyte at a time.

    Raises:
        SpecialFileError: If ``path`` is a FIFO, device or socket (after
            following links), or larger than ``limit`` bytes.
    """
    return sha256_regular(path, limit=limit)


class UnchangedFileMemo(Generic[_T]):
    """Values computed from files, remembered in this process while each file is unchanged.

    A file counts as unchanged while its device, inode, size and modification
    time (in nanoseconds) are, which is what build tools trust too. One fit
    reads each file's header and hash several times (the bad-file screen, the
    training and the validation features, a re-fit); this does it once.
    Holds at most ``limit`` values (then starts afresh). Thread-safe.
    """

    def __init__(self, limit: int = 1 << 20) -> None:
        self._values: dict[tuple[Hashable, ...], _T] = {}
        self._limit = limit
        self._guard = threading.Lock()

    def get(self, path: str | os.PathLike[str], compute: Callable[[str], _T], *key: Hashable) -> _T:
        """``compute(path)``, or its remembered value for ``path`` as it is now and ``key``.

        Raises:
            OSError: If the file cannot be examined (``os.stat``).
        """
        source = os.fspath(path)
        status = os.stat(source)
        full = (
            os.path.abspath(source),
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            *key,
        )
        with self._guard:
            if full in self._values:
                return self._values[full]
        value = compute(source)
        with self._guard:
            if len(self._values) >= self._limit:
                self._values.clear()
            self._values[full] = value
        return value


def cache_dir() -> Path:
    """Returns hubtransfer's per-user cache folder (not created).

    ``$HUBTRANSFER_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/hubtransfer``,
    else ``~/.cache/hubtransfer`` (``%LOCALAPPDATA%\\hubtransfer`` on Windows).

    Example:
        >>> import hubtransfer
        >>> (hubtransfer.cache_dir() / "embedded").name
        'embedded'
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "hubtransfer"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hubtransfer"


def hub_cache_dir() -> Path:
    """Returns the folder TF-Hub downloads are cached in.

    ``$TFHUB_CACHE_DIR`` if set (the variable ``tensorflow_hub`` itself
    reads), else ``cache_dir() / "tfhub"``, which is per-user rather than
    ``tensorflow_hub``'s default under ``/tmp``.
    """
    explicit = os.environ.get(TFHUB_CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return cache_dir() / "tfhub"


def is_savedmodel_dir(path: Path) -> bool:
    """Whether ``path`` is a folder holding a SavedModel (``saved_model.pb``)."""
    return path.is_dir() and (
        (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()
    )


def check_savedmodel_dir(path: Path, *, handle: str) -> Path:
    """Returns ``path`` if it holds a SavedModel, else raises a precise error.

    Raises:
        BrokenCacheEntryError: If ``path`` exists but lacks ``saved_model.pb``.
    """
    if is_savedmodel_dir(path):
        return path
    if path.is_dir():
        contents = sorted(p.name for p in path.iterdir())[:10]
        raise BrokenCacheEntryError(
            f"The folder {str(path)!r} for handle {handle!r} has no saved_model.pb "
            f"(it holds {contents!r}), so it is not a complete SavedModel. "
            "Delete the folder and load the handle again to rebuild it."
        )
    raise BrokenCacheEntryError(
        f"The path {str(path)!r} for handle {handle!r} is not a SavedModel folder. "
        "Point the handle at a folder that holds saved_model.pb."
    )


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the rename below still decides races.
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _exchange(first: Path, second: Path) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return bool(result == 0)


def replace_directory(
    source: Path, target: Path, *, on_swapped: Callable[[Path | None], None] | None = None
) -> None:
    """Moves the folder ``source`` to ``target``, replacing an existing folder there.

    Where the system can swap two paths atomically (Linux), a reader sees the
    old folder or the new one at every instant. Elsewhere the old folder is
    moved aside first and put back if the move fails, leaving a window of
    microseconds with no folder at ``target``, never a partial one.

    Args:
        source: The complete new folder.
        target: Where it goes.
        on_swapped: Called once the new folder is in place, with the path that
            now holds the old folder (``None`` if there was none), before that
            is removed.
    """
    if not target.exists() and not target.is_symlink():
        os.replace(source, target)
        if on_swapped is not None:
            on_swapped(None)
        return
    if not target.is_dir():
        raise FileExistsError(f"{str(target)!r} exists and is not a folder")
    if _exchange(source, target):
        if on_swapped is not None:
            on_swapped(source)
        _remove_tree(source)
        return
    backup = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
    os.replace(target, backup)
    try:
        os.replace(source, target)
    except OSError:
        os.replace(backup, target)
        raise
    if on_swapped is not None:
        on_swapped(backup)
    _remove_tree(backup)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_leftovers(target: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{32}}\.(?:tmp|stale)")
    with contextlib.suppress(OSError):
        for path in target.parent.iterdir():
            if pattern.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
                _remove_tree(path)


def build_atomically(
    target: Path,
    build: Callable[[Path], None],
    *,
    is_complete: Callable[[Path], bool] = is_savedmodel_dir,
) -> Path:
    """Builds a cache folder so that no reader ever sees it half-built.

    ``build`` is called with an empty temporary folder beside ``target`` and
    must fill it. The folder is then renamed to ``target``. A broken
    ``target`` (one ``is_complete`` rejects) is replaced. A failed ``build``
    leaves nothing behind. Concurrent builders of the same target, in threads
    or processes, all return the same complete folder.

    Args:
        target: Folder to create.
        build: Fills the folder it is given.
        is_complete: Judges whether a folder is a usable entry.

    Returns:
        ``target``.
    """
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{target.name}.lock"):
        # Under the builders' lock no other build of this entry runs: what earlier builds
        # left (killed mid-way) is stale. (Without flock, as on Windows, nothing is proven.)
        if importlib.util.find_spec("fcntl") is not None:
            _remove_leftovers(target)
        if is_complete(target):
            return target
        temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        temporary.mkdir()
        try:
            build(temporary)
            if not is_complete(temporary):
                raise BrokenCacheEntryError(
                    f"Building the cache entry {str(target)!r} produced an incomplete folder "
                    f"(contents: {sorted(p.name for p in temporary.iterdir())!r})."
                )
            if target.exists() or target.is_symlink():
                # A broken entry: move it aside first so the rename below is atomic.
                stale = target.parent / f".{target.name}.{uuid.uuid4().hex}.stale"
                os.replace(target, stale)
                _remove_tree(stale)
            try:
                os.replace(temporary, target)
            except OSError:
                # Without the lock (no fcntl) another process may have won the race.
                if not is_complete(target):
                    raise
        finally:
            _remove_tree(temporary)
    return target
