"""Handle resolution: turning a backbone handle into a local SavedModel folder.

A handle is one of:

* an ``embedded://`` handle: the offline backbone converted from a pip package;
* a local SavedModel folder (a path or a ``file://`` URL);
* an ``http(s)`` URL of a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive, fetched
  with a bounded time-out and unpacked safely into the cache;
* anything ``tensorflow_hub`` resolves: tfhub.dev and Kaggle model URLs,
  ``gs://`` archives.

Resolvers follow a small protocol (``is_supported(handle)``,
``__call__(handle)``) and are tried in order; :func:`register_resolver` adds
one in front of the built-ins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import shutil
import socket
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final, Protocol, runtime_checkable

from ._cache import build_atomically, check_savedmodel_dir, hub_cache_dir, is_savedmodel_dir
from ._exceptions import (
    BrokenCacheEntryError,
    HandleError,
    HandleUnreachableError,
    InvalidParameterError,
    UnsafeArchiveError,
)
from ._seams import pause_point

__all__ = [
    "DEFAULT_TIMEOUT",
    "DownloadLimits",
    "EmbeddedResolver",
    "HandleResolver",
    "HttpArchiveResolver",
    "LocalPathResolver",
    "TFHubResolver",
    "cache_entry_for",
    "download_limits",
    "redact_url",
    "register_resolver",
    "resolve_handle",
]

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds a network connect or read may take before the load fails."""

_TIMEOUT_ENV: Final = "HUBTRANSFER_DOWNLOAD_TIMEOUT"


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadLimits:
    """What one download of an archive handle may take, and what its archive may hold.

    Each limit is read from its environment variable when a download starts
    (see :func:`download_limits`); a download or unpack that passes one
    stops with an error naming the limit and its variable, and leaves nothing
    in the cache.

    Attributes:
        timeout: Seconds one connect or read may wait
            (``HUBTRANSFER_DOWNLOAD_TIMEOUT``, 30).
        deadline: Seconds the whole download may take
            (``HUBTRANSFER_DOWNLOAD_DEADLINE``, 3600): a server that sends a
            byte every few seconds never times out a single read.
        max_download_bytes: Bytes the download may have
            (``HUBTRANSFER_MAX_DOWNLOAD_BYTES``, 8 GiB).
        max_unpacked_bytes: Bytes the archive may unpack to
            (``HUBTRANSFER_MAX_UNPACKED_BYTES``, 16 GiB).
        max_ratio: Unpacked bytes per downloaded byte
            (``HUBTRANSFER_MAX_UNPACK_RATIO``, 100; SavedModel weights compress
            to about 0.9 of their size, so only a decompression bomb gets near).
        max_members: Files and folders in the archive
            (``HUBTRANSFER_MAX_ARCHIVE_MEMBERS``, 10,000; a SavedModel has a
            handful).
    """

    timeout: float = DEFAULT_TIMEOUT
    deadline: float = 3600.0
    max_download_bytes: int = 8 << 30
    max_unpacked_bytes: int = 16 << 30
    max_ratio: float = 100.0
    max_members: int = 10_000


_LIMIT_ENV: Final = {
    "timeout": _TIMEOUT_ENV,
    "deadline": "HUBTRANSFER_DOWNLOAD_DEADLINE",
    "max_download_bytes": "HUBTRANSFER_MAX_DOWNLOAD_BYTES",
    "max_unpacked_bytes": "HUBTRANSFER_MAX_UNPACKED_BYTES",
    "max_ratio": "HUBTRANSFER_MAX_UNPACK_RATIO",
    "max_members": "HUBTRANSFER_MAX_ARCHIVE_MEMBERS",
}


def download_limits() -> DownloadLimits:
    """The limits in force: each environment variable of :class:`DownloadLimits`, else its default.

    Raises:
        InvalidParameterError: If a variable is not a positive number (an
            integer for the byte and member counts).

    Example:
        >>> import hubtransfer
        >>> hubtransfer.download_limits().max_members
        10000
    """
    defaults = DownloadLimits()
    values: dict[str, Any] = {}
    for field, variable in _LIMIT_ENV.items():
        default = getattr(defaults, field)
        raw = os.environ.get(variable)
        if not raw:
            continue
        integer = isinstance(default, int)
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            value = -1
        if not value > 0 or (not integer and not math.isfinite(value)):
            kind = "integer" if integer else "number"
            raise InvalidParameterError(
                f"The environment variable {variable} must be a positive {kind}. "
                f"Got {raw!r} instead."
            )
        values[field] = value
    return DownloadLimits(**values)


_ARCHIVE_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar")
_HUB_HOSTS: Final = ("tfhub.dev", "www.kaggle.com", "kaggle.com", "hub.tensorflow.google.cn")
_CHUNK: Final = 1 << 20


@runtime_checkable
class HandleResolver(Protocol):
    """Turns the handles it supports into local SavedModel folders."""

    def is_supported(self, handle: str) -> bool:
        """Whether this resolver takes ``handle``."""
        ...

    def __call__(self, handle: str) -> str:
        """Returns the local folder holding the SavedModel for ``handle``."""
        ...


def redact_url(handle: str) -> str:
    """Returns ``handle`` with any ``user:password@`` part replaced by ``***@``.

    Example:
        >>> import hubtransfer
        >>> hubtransfer.redact_url("https://me:secret@example.com/m.tar.gz")
        'https://***@example.com/m.tar.gz'
    """
    try:
        parts = urllib.parse.urlsplit(handle)
    except ValueError:
        return handle
    if "@" not in parts.netloc:
        return handle
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


def _timeout() -> float:
    return download_limits().timeout


def cache_entry_for(handle: str) -> Path:
    """Returns the cache folder a remote handle is (or would be) stored in.

    The folder name is the SHA-1 of the handle, as ``tensorflow_hub`` names
    its own cache entries, so a cache filled by ``tensorflow_hub`` elsewhere
    can be copied in and is used offline.

    Example:
        >>> import hubtransfer
        >>> hubtransfer.cache_entry_for("https://tfhub.dev/google/x/1").name
        '732ee1a03c694cd720c572c9cecc15965237dbf0'
    """
    return hub_cache_dir() / hashlib.sha1(handle.encode("utf8")).hexdigest()


def _ways_out(handle: str) -> str:
    entry = cache_entry_for(handle)
    return (
        "Ways out: (1) pass a local SavedModel folder as the handle; "
        f"(2) pre-fill the cache: put the unpacked model in {str(entry)!r} "
        "(the folder tensorflow_hub creates for this handle on a machine with internet, "
        "or set TFHUB_CACHE_DIR to a cache that holds it); "
        "(3) use the embedded offline backbone 'efficientnet_lite0_embedded_fv' "
        "(or 'efficientnet_lite0_embedded_classifier')."
    )


def _unreachable(handle: str, reason: str) -> HandleUnreachableError:
    return HandleUnreachableError(
        f"Cannot fetch the backbone handle {redact_url(handle)!r}: {reason}. "
        f"The cache folder is {str(hub_cache_dir())!r}. {_ways_out(handle)}"
    )


class EmbeddedResolver:
    """Resolves ``embedded://`` handles, converting the weights on first use."""

    def is_supported(self, handle: str) -> bool:
        """Whether ``handle`` starts with ``embedded://``."""
        from ._embedded import is_embedded_handle

        return is_embedded_handle(handle)

    def __call__(self, handle: str) -> str:
        """Returns the cached SavedModel folder, building it if needed."""
        from ._embedded import resolve_embedded_handle

        return str(resolve_embedded_handle(handle))


class LocalPathResolver:
    """Resolves local folders and ``file://`` URLs."""

    def is_supported(self, handle: str) -> bool:
        """Whether ``handle`` is a ``file://`` URL or has no URL scheme."""
        if handle.startswith("file://"):
            return True
        scheme = urllib.parse.urlsplit(handle).scheme
        # A one-letter "scheme" is a Windows drive letter.
        return scheme == "" or len(scheme) == 1

    def __call__(self, handle: str) -> str:
        """Returns the folder, after checking it holds a SavedModel."""
        path_text = (
            urllib.parse.unquote(handle[len("file://") :])
            if handle.startswith("file://")
            else handle
        )
        path = Path(path_text).expanduser()
        if not path.exists():
            raise HandleError(
                f"The backbone handle {handle!r} is not a registered backbone name, "
                f"and no folder {str(path)!r} exists. Pass a backbone name "
                "(`hubtransfer backbones` lists them), a SavedModel folder, "
                "or a TF-Hub/Kaggle or http(s) .tar.gz URL."
            )
        if path.is_file() and path.name.endswith(_ARCHIVE_SUFFIXES):
            raise HandleError(
                f"The backbone handle {handle!r} is an archive; unpack it first "
                "(tar -xzf) and pass the folder that holds saved_model.pb."
            )
        try:
            return str(check_savedmodel_dir(path, handle=handle))
        except BrokenCacheEntryError as error:
            raise HandleError(str(error)) from None


def _is_http(handle: str) -> bool:
    return urllib.parse.urlsplit(handle).scheme in ("http", "https")


def _is_hub_host(handle: str) -> bool:
    host = (urllib.parse.urlsplit(handle).hostname or "").lower()
    return host in _HUB_HOSTS


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a '..' component"
    if member.issym() or member.islnk():
        return f"a link to {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return "a device, FIFO or other special file"
    return None


def _archive_members(
    tar: tarfile.TarFile, *, handle: str, compressed: int, limits: DownloadLimits
) -> list[tarfile.TarInfo]:
    """The archive's members, read one header at a time, stopping at the first limit passed."""
    members: list[tarfile.TarInfo] = []
    total = 0
    bound = min(limits.max_unpacked_bytes, int(limits.max_ratio * max(compressed, 1)))
    for member in tar:
        members.append(member)
        if len(members) > limits.max_members:
            raise UnsafeArchiveError(
                f"The archive from {redact_url(handle)!r} holds more than "
                f"{limits.max_members:,} members; refusing to unpack it (a SavedModel has a "
                f"handful). Set {_LIMIT_ENV['max_members']} to raise the limit."
            )
        problem = _member_problem(member)
        if problem is not None:
            raise UnsafeArchiveError(
                f"The archive from {redact_url(handle)!r} holds the member "
                f"{member.name!r}, which is {problem}; refusing to unpack it. "
                "Only regular files and folders with relative paths are accepted."
            )
        total += max(member.size, 0)
        if total > bound:
            raise UnsafeArchiveError(_too_big(handle, total, compressed, limits))
    return members


def _too_big(handle: str, total: int, compressed: int, limits: DownloadLimits) -> str:
    if total > limits.max_unpacked_bytes:
        limit = f"the {limits.max_unpacked_bytes:,}-byte limit ({_LIMIT_ENV['max_unpacked_bytes']})"
    else:
        limit = (
            f"{limits.max_ratio:g} times its {compressed:,} downloaded bytes "
            f"({_LIMIT_ENV['max_ratio']}; a decompression bomb?)"
        )
    return (
        f"The archive from {redact_url(handle)!r} unpacks to more than {total:,} bytes, "
        f"over {limit}; refusing to unpack it. Set the variable to raise the limit if the "
        "model really is that large."
    )


def extract_archive_safely(
    archive: Path, destination: Path, *, handle: str, limits: DownloadLimits | None = None
) -> None:
    """Unpacks a tar archive, refusing anything that could escape ``destination`` or flood it.

    Absolute paths, ``..`` components, symbolic and hard links, devices and
    FIFOs are refused before anything is written, and so is an archive over
    the member-count, unpacked-size or unpacked-to-downloaded ratio limits
    (:class:`DownloadLimits`; the sizes are counted again while unpacking).
    An archive whose files sit under one top-level folder is flattened, so
    ``destination`` ends up holding ``saved_model.pb`` directly.

    Raises:
        UnsafeArchiveError: If a member is unsafe or a limit is passed;
            nothing is extracted.
        HandleError: If the file is not a readable tar archive.
    """
    chosen = limits if limits is not None else download_limits()
    compressed = archive.stat().st_size
    bound = min(chosen.max_unpacked_bytes, int(chosen.max_ratio * max(compressed, 1)))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _archive_members(tar, handle=handle, compressed=compressed, limits=chosen)
            written = 0
            for member in members:
                target = destination.joinpath(*PurePosixPath(member.name).parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file, checked above
                with source, open(target, "wb") as sink:
                    for chunk in iter(lambda: source.read(_CHUNK), b""):  # noqa: B023
                        written += len(chunk)
                        if written > bound:
                            raise UnsafeArchiveError(_too_big(handle, written, compressed, chosen))
                        sink.write(chunk)
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, HandleError):
            raise
        raise HandleError(
            f"The download from {redact_url(handle)!r} is not a readable tar archive "
            f"({error}). Check that the URL points at a .tar.gz of a SavedModel."
        ) from error
    if not is_savedmodel_dir(destination):
        children = [p for p in destination.iterdir() if not p.name.startswith(".")]
        if len(children) == 1 and is_savedmodel_dir(children[0]):
            top = children[0]
            for item in top.iterdir():
                os.replace(item, destination / item.name)
            top.rmdir()


class HttpArchiveResolver:
    """Fetches ``http(s)`` tar archives (not tfhub.dev/Kaggle) into the cache.

    Args:
        timeout: Seconds a connect or read may take; default
            ``$HUBTRANSFER_DOWNLOAD_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`.
    """

    def __init__(self, *, timeout: float | None = None) -> None:
        self._timeout = timeout

    def is_supported(self, handle: str) -> bool:
        """Whether ``handle`` is an http(s) archive URL outside TF-Hub/Kaggle."""
        if not _is_http(handle) or _is_hub_host(handle):
            return False
        return urllib.parse.urlsplit(handle).path.lower().endswith(_ARCHIVE_SUFFIXES)

    def __call__(self, handle: str) -> str:
        """Returns the cached folder, downloading and unpacking on first use."""
        entry = cache_entry_for(handle)
        if entry.exists() and not is_savedmodel_dir(entry):
            warnings.warn(
                f"The cache entry {str(entry)!r} for {redact_url(handle)!r} has no "
                "saved_model.pb; it is replaced by a fresh download.",
                stacklevel=3,
            )
        limits = download_limits()
        if self._timeout is not None:
            limits = dataclasses.replace(limits, timeout=self._timeout)

        def download(folder: Path) -> None:
            archive = folder / ".download.tar"
            self._fetch(handle, archive, limits=limits)
            extract_archive_safely(archive, folder, handle=handle, limits=limits)
            archive.unlink()
            if not is_savedmodel_dir(folder):
                raise HandleError(
                    f"The archive from {redact_url(handle)!r} holds no saved_model.pb "
                    "(neither at its root nor under one top-level folder). "
                    "Check that it is a SavedModel archive."
                )

        build_atomically(entry, download)
        return str(entry)

    @staticmethod
    def _fetch(handle: str, target: Path, *, limits: DownloadLimits) -> None:
        request = urllib.request.Request(handle, headers={"User-Agent": "hubtransfer"})
        timeout = limits.timeout
        deadline = time.monotonic() + limits.deadline
        try:
            with (
                urllib.request.urlopen(request, timeout=timeout) as response,
                open(target, "wb") as sink,
            ):
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit():
                    _check_download_size(handle, int(announced), limits)
                received = 0
                # read1 returns what one read of the socket gives, so a server that sends a
                # byte at a time still meets the overall deadline between reads.
                while chunk := response.read1(_CHUNK):
                    received += len(chunk)
                    _check_download_size(handle, received, limits)
                    sink.write(chunk)
                    if received == len(chunk):
                        pause_point("download:started")
                    if time.monotonic() > deadline:
                        raise _unreachable(
                            handle,
                            f"the download took longer than {limits.deadline:g} s "
                            f"({received:,} bytes received; set {_LIMIT_ENV['deadline']} to "
                            "allow longer)",
                        )
        except urllib.error.HTTPError as error:
            reason = f"the server answered HTTP {error.code} {error.reason}"
            raise _unreachable(handle, reason) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            cause: object = getattr(error, "reason", None) or error
            raise _unreachable(handle, f"{cause} (time-out {timeout:g} s)") from None


def _check_download_size(handle: str, size: int, limits: DownloadLimits) -> None:
    if size > limits.max_download_bytes:
        raise UnsafeArchiveError(
            f"The download from {redact_url(handle)!r} is larger than "
            f"{limits.max_download_bytes:,} bytes; refusing it. Set "
            f"{_LIMIT_ENV['max_download_bytes']} to raise the limit if the model really is "
            "that large."
        )


_socket_timeout_lock = threading.Lock()


@contextlib.contextmanager
def _default_socket_timeout(seconds: float) -> Iterator[None]:
    # tensorflow_hub opens its URLs without a time-out; a process-wide default
    # for the duration of the download is the only lever that bounds a stall.
    with _socket_timeout_lock:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(seconds)
        try:
            yield
        finally:
            socket.setdefaulttimeout(previous)


class TFHubResolver:
    """Resolves TF-Hub / Kaggle / ``gs://`` handles with ``tensorflow_hub``.

    Before any download it checks the cache (a complete entry is used with no
    network at all; a broken one is reported and replaced) and whether the
    host answers within the time-out, so an offline machine fails in seconds
    with a message that says what to do, instead of hanging.
    """

    def __init__(self, *, timeout: float | None = None) -> None:
        self._timeout = timeout

    def is_supported(self, handle: str) -> bool:
        """Whether the handle has a URL scheme (``tensorflow_hub`` decides the rest)."""
        return urllib.parse.urlsplit(handle).scheme not in ("", "file", "embedded")

    def __call__(self, handle: str) -> str:
        """Returns the local folder ``tensorflow_hub`` resolved ``handle`` to."""
        import tensorflow_hub as hub

        entry = cache_entry_for(handle)
        if is_savedmodel_dir(entry):
            return str(entry)
        if entry.exists():
            warnings.warn(
                f"The cache entry {str(entry)!r} for {redact_url(handle)!r} has no "
                "saved_model.pb (an interrupted download?); it is removed and fetched again.",
                stacklevel=3,
            )
            shutil.rmtree(entry, ignore_errors=True)
            Path(f"{entry}.descriptor.txt").unlink(missing_ok=True)
        timeout = self._timeout if self._timeout is not None else _timeout()
        if _is_http(handle):
            self._check_reachable(handle, timeout=timeout)
        entry.parent.mkdir(parents=True, exist_ok=True)
        try:
            with (
                _scoped_env("TFHUB_CACHE_DIR", str(entry.parent)),
                _default_socket_timeout(timeout),
            ):
                resolved = hub.resolve(handle)
        except Exception as error:
            shutil.rmtree(entry, ignore_errors=True)
            raise _unreachable(handle, f"tensorflow_hub failed with {error!r}") from error
        return str(check_savedmodel_dir(Path(resolved), handle=handle))

    @staticmethod
    def _check_reachable(handle: str, *, timeout: float) -> None:
        parts = urllib.parse.urlsplit(handle)
        proxy = urllib.request.getproxies().get(parts.scheme)
        target = urllib.parse.urlsplit(proxy) if proxy else parts
        host = target.hostname
        if host is None:
            raise _unreachable(handle, "the URL names no host")
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=min(timeout, 10.0)):
                pass
        except OSError as error:
            via = f" (through the proxy {host}:{port})" if proxy else ""
            raise _unreachable(handle, f"{host}:{port} cannot be reached{via}: {error}") from None


@contextlib.contextmanager
def _scoped_env(name: str, value: str) -> Iterator[None]:
    # tensorflow_hub reads its cache folder from the environment at resolve time.
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


_extra_resolvers: list[HandleResolver] = []


def register_resolver(resolver: HandleResolver) -> None:
    """Adds a resolver tried before the built-in ones.

    Args:
        resolver: An object with ``is_supported(handle) -> bool`` and
            ``__call__(handle) -> str`` (the local SavedModel folder).

    Raises:
        InvalidParameterError: If ``resolver`` does not follow the protocol.
    """
    if not isinstance(resolver, HandleResolver):
        raise InvalidParameterError(
            f"A resolver needs is_supported(handle) and __call__(handle); got {resolver!r}."
        )
    _extra_resolvers.insert(0, resolver)


def _builtin_resolvers() -> tuple[HandleResolver, ...]:
    return (EmbeddedResolver(), LocalPathResolver(), HttpArchiveResolver(), TFHubResolver())


def resolve_handle(handle: str, *, resolvers: Sequence[HandleResolver] | None = None) -> Path:
    """Resolves a backbone handle to a local SavedModel folder.

    Args:
        handle: An ``embedded://`` handle, local folder, ``file://`` URL,
            ``http(s)`` ``.tar.gz`` URL, or TF-Hub / Kaggle URL.
        resolvers: Resolvers to try instead of the registered and built-in
            ones.

    Returns:
        The folder holding ``saved_model.pb``.

    Raises:
        HandleError: If no resolver takes the handle or the folder is not a
            SavedModel; :class:`HandleUnreachableError` when offline.

    Example:
        >>> import hubtransfer
        >>> path = hubtransfer.resolve_handle("embedded://efficientnet_lite0/feature_vector")
        >>> (path / "saved_model.pb").is_file()
        True
    """
    if not isinstance(handle, str) or not handle.strip():
        raise InvalidParameterError(f"A backbone handle must be a non-empty str. Got {handle!r}.")
    handle = handle.strip()
    chain = (
        tuple(resolvers)
        if resolvers is not None
        else (
            *_extra_resolvers,
            *_builtin_resolvers(),
        )
    )
    for resolver in chain:
        if resolver.is_supported(handle):
            return Path(resolver(handle))
    raise HandleError(
        f"No resolver supports the backbone handle {redact_url(handle)!r}. Pass a local "
        "SavedModel folder, an http(s) .tar.gz URL, a TF-Hub/Kaggle URL or an embedded:// handle."
    )
