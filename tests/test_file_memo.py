"""Values remembered per file while it is unchanged: hashes and header checks."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

import hubtransfer
from hubtransfer._cache import UnchangedFileMemo, file_sha256
from hubtransfer._features import cached_digest
from hubtransfer._preprocessing import _file_problem


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_memo_computes_once_while_the_file_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    calls: list[str] = []

    def size_of(source: str) -> int:
        calls.append(source)
        return os.path.getsize(source)

    memo: UnchangedFileMemo[int] = UnchangedFileMemo()
    assert memo.get(path, size_of) == 3
    assert memo.get(str(path), size_of) == 3
    assert len(calls) == 1
    # Another key is another value.
    assert memo.get(path, size_of, "other") == 3
    assert len(calls) == 2
    # A changed file (size and modification time) is read again.
    path.write_bytes(b"three")
    os.utime(path, ns=(1, 1))
    assert memo.get(path, size_of) == 5
    assert len(calls) == 3
    # A file that cannot be examined raises, and nothing is remembered for it.
    with pytest.raises(FileNotFoundError):
        memo.get(tmp_path / "missing.bin", size_of)
    assert len(calls) == 3


def test_memo_starts_afresh_at_its_limit(tmp_path: Path) -> None:
    memo: UnchangedFileMemo[str] = UnchangedFileMemo(limit=2)
    paths = [tmp_path / f"{n}.bin" for n in range(3)]
    calls: list[str] = []
    for path in paths:
        path.write_bytes(path.name.encode())
        memo.get(path, calls.append)
    memo.get(paths[2], calls.append)  # kept after the clear
    memo.get(paths[0], calls.append)  # dropped by it
    assert calls == [str(p) for p in paths] + [str(paths[0])]


def test_cached_digest_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(_png((4, 4)))
    assert cached_digest(path) == file_sha256(path)
    path.write_bytes(_png((5, 3)))
    os.utime(path, ns=(2, 2))
    assert cached_digest(path) == file_sha256(path)


def test_header_check_is_redone_when_a_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"not an image at all")
    problem, _ = _file_problem(str(path), None)
    assert problem is not None
    path.write_bytes(_png((6, 4)))
    os.utime(path, ns=(3, 3))
    assert _file_problem(str(path), None) == (None, 1)
    # The pixel limit is part of the key: the same file, judged under another limit.
    over, _ = _file_problem(str(path), 10)
    assert over is not None and "pixel" in over
    # A file removed since is reported as missing, not from memory.
    path.unlink()
    assert _file_problem(str(path), None) == ("does not exist", 1)
    preprocessor = hubtransfer.Preprocessor(hubtransfer.PreprocessingContract(input_size=(4, 4)))
    with pytest.raises(hubtransfer.ImageDecodeError, match=r"photo\.jpg"):
        preprocessor.dataset([path])
