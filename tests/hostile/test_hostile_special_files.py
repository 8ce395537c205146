"""Special files named like images: refused by name, never read.

A FIFO named ``x.png`` blocks a reader forever; a symbolic link named
``y.png`` to ``/dev/zero`` never ends. Both sit in a class folder while
`check`, `train` and `predict` run in real processes with a time-out: a
regression fails the test instead of hanging the run. A regular file over
the size limit is refused from its size.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _hostile import FAST, assert_one_error_line, run_cli

import hubtransfer
from hubtransfer import TransferClassifier

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pytest.fixture
def hostile_data(data: Path) -> Path:
    os.mkfifo(data / "red" / "x.png")
    (data / "blue" / "y.png").symlink_to("/dev/zero")
    return data


def test_check_names_the_fifo_and_the_device(
    tiny_models: dict[str, Path], hostile_data: Path
) -> None:
    finished = run_cli(tiny_models, ["check", str(hostile_data)], timeout=180)
    assert finished.code == 1, finished.err[-2000:]
    assert "Traceback" not in finished.err
    assert "'red/x.png' is a FIFO (named pipe), not a regular file" in finished.out
    assert "'blue/y.png' is a character device, not a regular file" in finished.out
    assert "2 of 26 image files cannot be used" in finished.err


def test_train_names_them_and_skip_trains_without_them(
    tiny_models: dict[str, Path], hostile_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    train = ["train", str(hostile_data), "--out", str(out), "--quiet", "--epochs", "2"]
    finished = run_cli(tiny_models, [*train, "--backbone", "hostile_tiny_fv"], timeout=240)
    assert_one_error_line(finished, "x.png", "FIFO", "y.png", "character device")
    assert not out.exists()
    skipped = run_cli(
        tiny_models,
        [*train, "--backbone", "hostile_tiny_fv", "--on-bad-image", "skip"],
        timeout=240,
    )
    assert skipped.code == 0, skipped.err[-2000:]
    model = TransferClassifier.load(out)
    assert model.split_ is not None
    assert len(model.split_.train) + len(model.split_.validation) == 24


def test_predict_names_them(
    tiny_models: dict[str, Path],
    tiny_backbone: hubtransfer.BackboneSpec,
    hostile_data: Path,
    tmp_path: Path,
) -> None:
    clean = hubtransfer.testing.make_colour_folder(tmp_path / "clean", per_class=4)
    model_dir = TransferClassifier(tiny_backbone, **FAST).fit(clean).save(tmp_path / "m")
    finished = run_cli(tiny_models, ["predict", str(model_dir), str(hostile_data)], timeout=180)
    assert_one_error_line(finished, "x.png", "FIFO", "y.png", "character device")
    # Given by name, too.
    finished = run_cli(
        tiny_models, ["predict", str(model_dir), str(hostile_data / "red" / "x.png")], timeout=180
    )
    assert_one_error_line(finished, "x.png", "FIFO")


def test_the_api_refuses_them_before_reading(hostile_data: Path) -> None:
    # In-process: the refusal is immediate, because the file is opened non-blocking.
    bad = hubtransfer.find_bad_images(
        [hostile_data / "red" / "x.png", hostile_data / "blue" / "y.png"]
    )
    assert [(b.path.name, b.kind, b.reason) for b in bad] == [
        ("x.png", "unreadable", "is a FIFO (named pipe), not a regular file"),
        ("y.png", "unreadable", "is a character device, not a regular file"),
    ]


def test_a_file_over_the_size_limit_is_refused_by_its_size(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = data / "red" / "big.png"
    big.write_bytes((data / "red" / "0.png").read_bytes())
    with big.open("r+b") as handle:
        handle.truncate(3 << 20)  # sparse: 3 MiB that take no disk
    monkeypatch.setenv("HUBTRANSFER_MAX_FILE_BYTES", str(1 << 20))
    [bad] = hubtransfer.find_bad_images([big])
    assert bad.reason == (
        "is 3.0 MiB, over the 1.0 MiB limit for a file (set HUBTRANSFER_MAX_FILE_BYTES to raise it)"
    )
    report = hubtransfer.check_dataset(data)
    assert [b.path.name for b in report.bad_files] == ["big.png"]


@pytest.mark.skipif(sys.platform != "linux", reason="/dev/zero")
def test_hashing_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(OSError, match="character device"):
        hubtransfer.file_digest(link)
