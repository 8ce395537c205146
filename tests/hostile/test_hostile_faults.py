"""Real file-system faults: a read-only cache and a full disk, in a private mount namespace.

Each test runs `hubtransfer` in a real process inside ``unshare -m`` (or
``unshare -rm`` for an unprivileged user), where a read-only bind mount or
a tiny tmpfs is laid over a folder of the test. Tests here run as root in
CI, so ``chmod`` would not stop a write: a mount does. Where mount
namespaces are not permitted the tests are skipped, saying why.
"""

from __future__ import annotations

import functools
import math
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _hostile import FAST, TINY, assert_one_error_line, run_cli, snapshot

import hubtransfer
from hubtransfer import TransferClassifier


@functools.cache
def _namespace() -> tuple[str, ...] | None:
    """The ``unshare`` command that gives a private mount namespace here, if any."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return None
    for command in (("unshare", "-m"), ("unshare", "-rm")):
        probe = [*command, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"]
        try:
            done = subprocess.run(probe, capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return command
    return None


needs_mounts = pytest.mark.skipif(
    _namespace() is None,
    reason="mount namespaces are not permitted here (unshare -m / -rm): no read-only bind "
    "mount or small tmpfs can be made without touching the host",
)


def _under(setup: str, after: str = "") -> list[str]:
    """A wrap for run_cli: ``setup`` runs in the namespace, then the command, then ``after``."""
    namespace = _namespace()
    assert namespace is not None
    script = f'set -e; {setup}; set +e; "$@"; code=$?; {after or ":"}; exit $code'
    return [*namespace, "sh", "-c", script, "sh"]


def _read_only_cache(tmp_path: Path) -> tuple[Path, str]:
    """An empty cache folder, and the setup that makes it read-only in the namespace."""
    cache = tmp_path / "cache"
    cache.mkdir()
    return cache, f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache}"


@needs_mounts
def test_a_read_only_cache_trains_without_caching_and_says_so(
    tiny_models: dict[str, Path], data: Path, tmp_path: Path
) -> None:
    cache, read_only = _read_only_cache(tmp_path)
    out = tmp_path / "model"
    finished = run_cli(
        tiny_models,
        ["train", str(data), "--out", str(out), "--backbone", TINY, "--epochs", "4", "--quiet"],
        env={"HUBTRANSFER_CACHE_DIR": str(cache)},
        wrap=_under(read_only),
    )
    assert finished.code == 0, finished.err[-3000:]
    assert "Traceback" not in finished.err
    assert "features are kept in memory for this run only" in finished.err
    assert str(cache) in finished.err and "HUBTRANSFER_CACHE_DIR" in finished.err
    assert TransferClassifier.load(out).classes_.tolist() == ["blue", "green", "red"]
    assert list(cache.iterdir()) == []


@needs_mounts
def test_a_read_only_cache_that_must_hold_a_backbone_is_one_line(
    tiny_models: dict[str, Path], data: Path, tmp_path: Path
) -> None:
    cache, read_only = _read_only_cache(tmp_path)
    finished = run_cli(
        tiny_models,
        ["classify", str(data / "red" / "0.png")],  # the embedded classifier: built in the cache
        env={"HUBTRANSFER_CACHE_DIR": str(cache)},
        wrap=_under(read_only),
    )
    assert_one_error_line(
        finished,
        "cannot write to the cache folder",
        str(cache),
        "Read-only file system",
        "HUBTRANSFER_CACHE_DIR",
    )


def _blocks(folder: Path) -> int:
    return sum(math.ceil(p.stat().st_size / 4096) * 4096 for p in folder.rglob("*") if p.is_file())


@needs_mounts
def test_a_full_disk_keeps_the_old_model_and_leaves_nothing_else(
    tiny_models: dict[str, Path],
    tiny_backbone: hubtransfer.BackboneSpec,
    data: Path,
    tmp_path: Path,
) -> None:
    old = TransferClassifier(tiny_backbone, **FAST).fit(data).save(tmp_path / "old")
    disk = tmp_path / "disk"
    disk.mkdir()
    listing = tmp_path / "listing.txt"
    copy = tmp_path / "copy"
    # The old model, then a filler up to the last byte, less 16 KiB: no room for a new model.
    assert _blocks(old) > 8 * 4096
    setup = (
        f"mount -t tmpfs -o size={4 * _blocks(old)} tmpfs {disk} && cp -r {old} {disk}/model"
        f" && (dd if=/dev/zero of={disk}/filler bs=4096 2>/dev/null || true)"
        f" && truncate -s -16K {disk}/filler"
    )
    after = f"ls -A {disk} > {listing}; cp -r {disk}/model {copy}"
    finished = run_cli(
        tiny_models,
        [
            "train", str(data), "--out", str(disk / "model"), "--backbone", tiny_backbone.name,
            "--epochs", "3", "--quiet", "--seed", "5",
        ],
        wrap=_under(setup, after),
    )  # fmt: skip
    assert_one_error_line(finished, "No space left on device", str(disk))
    assert sorted(listing.read_text().split()) == ["filler", "model"]
    assert snapshot(copy) == snapshot(old)
    assert TransferClassifier.load(copy).seed == 0  # the old model, not the new (seed 5)


@needs_mounts
def test_the_namespace_probe_is_what_the_tests_use() -> None:
    # Keeps the skip honest: the probe's command really gives a private, writable tmpfs.
    namespace = _namespace()
    assert namespace is not None
    done = subprocess.run(
        [
            *namespace,
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs /mnt && touch /mnt/x && ls /mnt",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.stdout.split() == ["x"], shlex.join(namespace)
