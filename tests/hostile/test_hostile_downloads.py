"""Archives and downloads at their limits, from a real HTTP server on 127.0.0.1.

The server drips one byte every half second, announces 100 GB, or serves a
3 MB archive that unpacks to gigabytes or holds thousands of members. Every
download runs in a thread joined with a time-out, so a download without a
deadline fails the test instead of hanging it; every failure must leave no
cache entry and no temporary folder behind.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _hostile import paused_at

import hubtransfer
from hubtransfer import HandleUnreachableError, UnsafeArchiveError
from hubtransfer._handles import HttpArchiveResolver


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as they are read (a bomb is never held in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def _bomb(unpacked: int) -> bytes:
    """A .tar.gz of one member of ``unpacked`` zero bytes (about a thousandth of it packed)."""
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w:gz") as tar:
        info = tarfile.TarInfo("variables/variables.data-00000-of-00001")
        info.size = unpacked
        tar.addfile(info, _Zeros(unpacked))
    return output.getvalue()


def _many_members(count: int) -> bytes:
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w:gz") as tar:
        for index in range(count):
            info = tarfile.TarInfo(f"assets/{index}.txt")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return output.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Callable[[_Handler], None]]] = {}

    def do_GET(self) -> None:
        self.routes[self.path](self)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _drip(handler: _Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(10_000_000))
    handler.end_headers()
    try:
        for _ in range(600):
            handler.wfile.write(b"\x1f")
            handler.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass  # the client gave up, as it should


def _serve(payload: bytes, *, announce: int | None = None) -> Callable[[_Handler], None]:
    def respond(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header(
            "Content-Length", str(announce if announce is not None else len(payload))
        )
        handler.end_headers()
        with contextlib.suppress(OSError):  # the client may hang up first
            handler.wfile.write(payload)

    return respond


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    _Handler.routes = {
        "/drip.tar.gz": _drip,
        "/bomb.tar.gz": _serve(_bomb(200 << 20)),
        "/many.tar.gz": _serve(_many_members(3000)),
        "/huge.tar.gz": _serve(b"\x1f\x8b" + bytes(1000), announce=100 << 30),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _resolve_within(handle: str, seconds: float) -> BaseException:
    """Resolves ``handle`` in a thread; returns what it raised, within ``seconds`` or fails."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            HttpArchiveResolver()(handle)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"resolving {handle} still ran after {seconds} s"
    assert outcome, f"resolving {handle} succeeded in {time.monotonic() - started:.1f} s"
    return outcome[0]


def _nothing_left(handle: str) -> None:
    entry = hubtransfer.cache_entry_for(handle)
    assert not entry.exists()
    leftovers = [p.name for p in entry.parent.iterdir() if p.name.startswith(f".{entry.name}.")]
    assert [name for name in leftovers if not name.endswith(".lock")] == []


def test_a_server_dripping_a_byte_at_a_time_meets_the_deadline(
    server: str, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBTRANSFER_DOWNLOAD_DEADLINE", "3")
    monkeypatch.setenv("HUBTRANSFER_DOWNLOAD_TIMEOUT", "2")
    handle = f"{server}/drip.tar.gz"
    started = time.monotonic()
    error = _resolve_within(handle, 30)
    assert isinstance(error, HandleUnreachableError), error
    assert "took longer than 3 s" in str(error)
    assert "HUBTRANSFER_DOWNLOAD_DEADLINE" in str(error)
    assert time.monotonic() - started < 10
    _nothing_left(handle)


def test_a_decompression_bomb_is_refused_by_ratio_and_by_size(
    server: str, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = f"{server}/bomb.tar.gz"
    error = _resolve_within(handle, 120)
    assert isinstance(error, UnsafeArchiveError), error
    assert "HUBTRANSFER_MAX_UNPACK_RATIO" in str(error)
    _nothing_left(handle)
    monkeypatch.setenv("HUBTRANSFER_MAX_UNPACK_RATIO", "1000000")
    monkeypatch.setenv("HUBTRANSFER_MAX_UNPACKED_BYTES", str(50 << 20))
    error = _resolve_within(handle, 120)
    assert isinstance(error, UnsafeArchiveError), error
    assert "HUBTRANSFER_MAX_UNPACKED_BYTES" in str(error)
    _nothing_left(handle)


def test_an_archive_of_thousands_of_members_is_refused(
    server: str, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBTRANSFER_MAX_ARCHIVE_MEMBERS", "1000")
    handle = f"{server}/many.tar.gz"
    error = _resolve_within(handle, 60)
    assert isinstance(error, UnsafeArchiveError), error
    assert "more than 1,000 members" in str(error)
    _nothing_left(handle)


def test_a_download_announced_over_the_limit_is_refused_before_reading(
    server: str, isolated_cache: Path
) -> None:
    handle = f"{server}/huge.tar.gz"
    error = _resolve_within(handle, 30)
    assert isinstance(error, UnsafeArchiveError), error
    assert "HUBTRANSFER_MAX_DOWNLOAD_BYTES" in str(error)
    _nothing_left(handle)


@pytest.mark.parametrize(
    "variable", ["HUBTRANSFER_DOWNLOAD_DEADLINE", "HUBTRANSFER_MAX_ARCHIVE_MEMBERS"]
)
def test_a_bad_limit_in_the_environment_is_named(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "lots")
    with pytest.raises(hubtransfer.InvalidParameterError, match=variable):
        hubtransfer.download_limits()


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_download_killed_half_way_leaves_nothing_and_the_next_succeeds(
    tiny_models: dict[str, Path], isolated_cache: Path, tmp_path: Path
) -> None:
    from hubtransfer.testing import make_tar_gz, serve_directory

    archive = make_tar_gz(tiny_models["fv"], tmp_path / "site" / "tiny.tar.gz")
    with serve_directory(archive.parent) as url:
        handle = f"{url}/tiny.tar.gz"
        script = "import sys\nfrom hubtransfer._handles import HttpArchiveResolver\n"
        script += "HttpArchiveResolver()(sys.argv[1])\n"
        with paused_at("download:started", script, handle, signal_file=tmp_path / "reached"):
            pass  # killed with the first bytes on disk
        entry = hubtransfer.cache_entry_for(handle)
        assert not entry.exists()
        assert any(p.name.endswith(".tmp") for p in entry.parent.iterdir())  # the killed one's
        assert Path(HttpArchiveResolver()(handle)) == entry
        assert (entry / "saved_model.pb").is_file()
        _nothing_left_but(entry)


def _nothing_left_but(entry: Path) -> None:
    left = sorted(p.name for p in entry.parent.iterdir())
    assert left == sorted([entry.name, f".{entry.name}.lock"]), left
