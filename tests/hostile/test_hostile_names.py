"""Folder and file names that break labels or reports: links, newlines, bytes that are not UTF-8."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from _hostile import FAST

import hubtransfer
from hubtransfer import DatasetError, TransferClassifier
from hubtransfer._cli import main


def test_a_class_folder_linked_to_another_class_is_refused_by_fit(
    tiny_backbone: hubtransfer.BackboneSpec, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data / "violet").symlink_to(data / "blue", target_is_directory=True)
    with pytest.raises(DatasetError, match="'violet' and 'blue' share their files on disk"):
        TransferClassifier(tiny_backbone, **FAST).fit(data)
    out = data.parent / "model"
    assert main(["train", str(data), "--out", str(out), "--backbone", tiny_backbone.name]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "share their files on disk" in line and "Remove the link" in line
    assert not out.exists()


def test_a_link_to_a_folder_inside_another_class_is_refused(
    tiny_backbone: hubtransfer.BackboneSpec, data: Path
) -> None:
    (data / "red" / "dark").mkdir()
    shutil.copy(data / "red" / "0.png", data / "red" / "dark" / "0.png")
    (data / "maroon").symlink_to(data / "red" / "dark", target_is_directory=True)
    with pytest.raises(DatasetError, match="'maroon' and 'red' share their files"):
        TransferClassifier(tiny_backbone, **FAST).fit(data)


def test_a_newline_in_a_class_name_is_refused_by_name(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.rename(data / "red", data / "red\nfire")
    with pytest.raises(DatasetError, match=r"The class name 'red\\nfire' holds a control"):
        hubtransfer.scan_image_folder(data)
    assert main(["check", str(data)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "holds a control character" in lines[0]


def test_evaluate_on_a_folder_with_another_class_says_what_to_do_without_api_words(
    tiny_backbone: hubtransfer.BackboneSpec, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = TransferClassifier(tiny_backbone, **FAST).fit(data).save(data.parent / "m")
    shutil.copytree(data / "red", data / "purple")
    assert main(["evaluate", str(model_dir), str(data)]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "['purple']" in line and "classes=" not in line
    assert "Remove or rename those sub-folders" in line


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes on Linux")
def test_a_file_name_that_is_not_utf8_round_trips_through_the_json_report(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = os.fsencode(data / "red") + b"/\xff\xfe.png"
    shutil.copy(data / "green" / "0.png", raw)
    assert main(["check", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # A copy of green/0.png in red: reported as a duplicate across classes, by its exact name.
    [duplicate] = [w for w in report["warnings"] if w["kind"] == "duplicate across classes"]
    assert raw in [os.fsencode(path) for path in duplicate["paths"]]
    assert main(["check", str(data)]) == 0  # the text report prints it too
    assert "\\udcff\\udcfe.png" in capsys.readouterr().out
