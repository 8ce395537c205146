"""Reading users' files safely, and saying in one line what the file system refused.

Every path that opens a file a user named (an image to scan, check, hash,
decode, predict or plot; a saved model's description) opens it here:

* only a **regular file** is read, after following symbolic links. A FIFO
  named ``x.png`` would block the reader forever and a link to
  ``/dev/zero`` would never end; both are refused, by name, before a byte is
  read (the file is opened with ``O_NONBLOCK``, so even opening a FIFO
  returns at once);
* reads are **bounded**: a file larger than the limit is refused from its
  size, and a read never takes more than the limit even if the file grows.

The refusal is a :class:`SpecialFileError` (an ``OSError``), so every caller's
existing ``except OSError`` handler names the file with the reason.
:func:`describe_os_error` turns any file-system fault (read-only folder, disk
full, no permission) into one line naming the path and the way out; the
command line prints it instead of a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

from ._exceptions import InvalidParameterError

__all__ = [
    "MAX_FILE_BYTES",
    "SpecialFileError",
    "describe_os_error",
    "is_write_fault",
    "max_file_bytes",
    "open_regular",
    "read_regular",
    "sha256_regular",
]

MAX_FILE_BYTES_ENV: Final = "HUBTRANSFER_MAX_FILE_BYTES"
MAX_FILE_BYTES: Final = 1 << 30
"""The largest image file read (1 GiB; ``$HUBTRANSFER_MAX_FILE_BYTES`` overrides).

The pixel limit allows 89 million pixels: an uncompressed 32-bit BMP of that
size takes 358 MB, so no image training can decode is near the limit.
"""

_CHUNK: Final = 1 << 20
_WRITE_FAULTS: Final = frozenset(
    {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}
)


class SpecialFileError(OSError):
    """A path that is not a regular file, or a file over the size limit: not read.

    ``strerror`` says what the path is ("is a FIFO (named pipe), not a
    regular file"), so handlers that print ``error.strerror`` name the reason.
    """


def max_file_bytes() -> int:
    """The file-size limit in force: ``$HUBTRANSFER_MAX_FILE_BYTES``, else :data:`MAX_FILE_BYTES`.

    Raises:
        InvalidParameterError: If the variable is set to something other than
            a positive integer.
    """
    raw = os.environ.get(MAX_FILE_BYTES_ENV)
    if not raw:
        return MAX_FILE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidParameterError(
            f"The environment variable {MAX_FILE_BYTES_ENV} must be a positive number of "
            f"bytes. Got {raw!r} instead."
        )
    return value


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def _refusal(path: str, reason: str) -> SpecialFileError:
    return SpecialFileError(errno.EINVAL, reason, path)


def _size_text(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GiB"
    return f"{count / (1 << 20):.1f} MiB"


def open_regular(path: str | os.PathLike[str], *, limit: int | None = None) -> BinaryIO:
    """Opens a regular file for reading; refuses anything else before reading it.

    Args:
        path: The file. Symbolic links are followed; what they point at must
            be a regular file.
        limit: Refuse files larger than this many bytes (``None``: no limit).

    Returns:
        The open binary file.

    Raises:
        SpecialFileError: If the path is a FIFO, a device, a socket or a
            folder (after following links), or larger than ``limit``.
        OSError: If it cannot be opened (missing, no permission...).

    Example:
        >>> import hubtransfer._files as files
        >>> try:
        ...     files.open_regular("/dev/zero")
        ... except files.SpecialFileError as error:
        ...     print(error.strerror)
        is a character device, not a regular file
    """
    source = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(source, flags)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            if stat.S_ISDIR(status.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", source)
            raise _refusal(source, f"is {_kind(status.st_mode)}, not a regular file")
        if limit is not None and status.st_size > limit:
            raise _refusal(
                source,
                f"is {_size_text(status.st_size)}, over the {_size_text(limit)} limit for a "
                f"file (set {MAX_FILE_BYTES_ENV} to raise it)",
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        stream = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    return stream


def read_regular(path: str | os.PathLike[str], *, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (default :func:`max_file_bytes`).

    Raises:
        SpecialFileError: If the path is not a regular file, or it holds (or
            grows to) more than ``limit`` bytes.
        OSError: If it cannot be read.
    """
    bound = max_file_bytes() if limit is None else limit
    with open_regular(path, limit=bound) as stream:
        data = stream.read(bound + 1)
    if len(data) > bound:
        raise _refusal(
            os.fspath(path),
            f"grew past the {_size_text(bound)} limit while it was read (set "
            f"{MAX_FILE_BYTES_ENV} to raise it)",
        )
    return data


def read_regular_prefix(path: str | os.PathLike[str], size: int) -> bytes:
    """The first ``size`` bytes of a regular file (any length): a header check's read."""
    with open_regular(path) as stream:
        return stream.read(size)


def _chunks(stream: BinaryIO, limit: int | None, path: str) -> Iterator[bytes]:
    seen = 0
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise _refusal(
                path,
                f"grew past the {_size_text(limit)} limit while it was read (set "
                f"{MAX_FILE_BYTES_ENV} to raise it)",
            )
        yield chunk


def sha256_regular(path: str | os.PathLike[str], *, limit: int | None = None) -> str:
    """The SHA-256 (hex) of a regular file, read a megabyte at a time, at most ``limit`` bytes.

    Raises:
        SpecialFileError: If the path is not a regular file or is over ``limit``.
        OSError: If it cannot be read.
    """
    digest = hashlib.sha256()
    with open_regular(path, limit=limit) as stream:
        for chunk in _chunks(stream, limit, os.fspath(path)):
            digest.update(chunk)
    return digest.hexdigest()


def read_npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], Any]:
    """The shape and dtype a ``.npy`` stream's header declares, reading nothing after it.

    Raises:
        ValueError: If the stream does not start with a ``.npy`` header.
    """
    import numpy as np

    version = np.lib.format.read_magic(stream)
    shape, _, dtype = (
        np.lib.format.read_array_header_1_0(stream)
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0(stream)
    )
    return tuple(int(n) for n in shape), dtype


def is_write_fault(error: BaseException) -> bool:
    """Whether ``error`` is the file system refusing a write: read-only, full, or forbidden."""
    return isinstance(error, OSError) and error.errno in _WRITE_FAULTS


def describe_os_error(error: OSError, *, cache: str | None = None) -> str:
    """One line naming the path the file system refused and the way out.

    Args:
        error: The fault.
        cache: The cache folder; a fault inside it points at
            ``HUBTRANSFER_CACHE_DIR``.

    Example:
        >>> import errno, hubtransfer._files as files
        >>> fault = OSError(errno.ENOSPC, "No space left on device", "/data/model")
        >>> print(files.describe_os_error(fault))
        cannot write '/data/model': No space left on device. Free some space, or write elsewhere.
    """
    path = error.filename if error.filename is not None else "a file"
    where = repr(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    reason = error.strerror or str(error)
    if isinstance(error, SpecialFileError):
        return f"{where} {reason}."
    inside_cache = False
    if cache is not None and isinstance(error.filename, (str, os.PathLike)):
        filename = os.path.abspath(os.fspath(error.filename))
        folder = os.path.abspath(cache)
        # The folder itself, a file in it, or a folder above it that had to be created.
        inside_cache = (
            filename == folder
            or filename.startswith(folder + os.sep)
            or folder.startswith(filename + os.sep)
        )
    if inside_cache:
        return (
            f"cannot write to the cache folder {where}: {reason}. To go on, set "
            "HUBTRANSFER_CACHE_DIR to a writable folder with free space."
        )
    if error.errno == errno.ENOSPC or error.errno == errno.EDQUOT:
        return f"cannot write {where}: {reason}. Free some space, or write elsewhere."
    if error.errno == errno.EROFS:
        return f"cannot write {where}: {reason}. Choose a folder on a writable disk."
    if error.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot use {where}: {reason}. Choose a folder you may write, or fix its permissions."
        )
    if error.errno == errno.ENOENT:
        return f"{where} does not exist ({reason}). Check the path."
    return f"cannot use {where}: {reason}."
