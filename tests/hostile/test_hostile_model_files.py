"""Hand-edited model folders: every edit is one ModelFormatError naming the file.

Each edit keeps the folder's checksums consistent (as a deliberate edit, or
a crafted folder, would), so what is tested is the schema check behind them:
types, unknown parameters, nesting depth, size, and the head's ``.npz``.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _hostile import FAST

import hubtransfer
from hubtransfer import ModelFormatError, TransferClassifier
from hubtransfer._cache import file_sha256


@pytest.fixture(scope="module")
def saved(
    tiny_backbone: hubtransfer.BackboneSpec, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("edited")
    data = hubtransfer.testing.make_colour_folder(root / "data", per_class=6)
    return TransferClassifier(tiny_backbone, **FAST).fit(data).save(root / "model")


def _metadata(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "hubtransfer.json").read_text())


def _write_metadata(folder: Path, metadata: dict[str, Any]) -> None:
    (folder / "hubtransfer.json").write_text(json.dumps(metadata))


def _rehash(folder: Path, name: str) -> None:
    metadata = _metadata(folder)
    metadata["files"][name] = file_sha256(folder / name)
    _write_metadata(folder, metadata)


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        metadata = _metadata(folder)
        change(metadata)
        _write_metadata(folder, metadata)

    return apply


def _object_array(folder: Path) -> None:
    with np.load(folder / "head.npz") as stored:
        weights = {name: stored[name] for name in stored.files}
    weights["w0"] = np.asarray([object(), "x"], dtype=object)
    np.savez(folder / "head.npz", **weights)  # object arrays are pickled by numpy
    _rehash(folder, "head.npz")


def _claims_more_than_it_holds(folder: Path) -> None:
    with np.load(folder / "head.npz") as stored:
        weights = {name: stored[name] for name in stored.files}
    with zipfile.ZipFile(folder / "head.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in weights.items():
            if name == "w0":
                array = np.zeros((8, 200_000), np.float32)  # 6.4 MB of zeros: packs to KB
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, array)
    _rehash(folder, "head.npz")


def _deep(metadata: dict[str, Any]) -> None:
    metadata["history"] = {"loss": [0.5]}
    metadata["calibration"] = None
    nested: Any = 1
    for _ in range(50):
        nested = [nested]
    metadata["label_map"]["extra"] = nested


def _very_deep(folder: Path) -> None:
    text = (folder / "hubtransfer.json").read_text()
    (folder / "hubtransfer.json").write_text(
        text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    )


def _huge(folder: Path) -> None:
    metadata = _metadata(folder)
    metadata["padding"] = "x" * (17 << 20)
    _write_metadata(folder, metadata)


EDITS: dict[str, tuple[Callable[[Path], None], str]] = {
    "extra parameter": (
        _edit(lambda m: m["params"].update(colour="blue")),
        "holds ['colour'], which are not parameters of TransferClassifier",
    ),
    "parameter of the wrong type": (
        _edit(lambda m: m["params"].update(epochs="many")),
        "The parameters in",
    ),
    "feature_dim a string": (
        _edit(lambda m: m["head"].update(feature_dim="8")),
        "'head.feature_dim' must be a positive integer; it is '8'",
    ),
    "feature_dim of another backbone": (
        _edit(lambda m: m["head"].update(feature_dim=1 << 30)),
        "takes 1073741824 features, but the backbone gives 8",
    ),
    "classes not a list": (_edit(lambda m: m.update(classes="red")), "'classes' must be a list"),
    "no params": (_edit(lambda m: m.pop("params")), "'params' is missing"),
    "history of strings": (
        _edit(lambda m: m.update(history={"loss": ["low"]})),
        "'history' must be an object of lists of numbers",
    ),
    "nested 50 deep": (_edit(_deep), "nested deeper than 32 levels"),
    "nested 100,000 deep": (_very_deep, "nested deeper than 32 levels"),
    "17 MiB description": (_huge, "a model description is at most 16 MiB"),
    "object array in head.npz": (_object_array, "holds object values, not floats"),
    "head.npz claiming more than it holds": (
        _claims_more_than_it_holds,
        "bytes of weights, more than the file's",
    ),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_an_edited_folder_is_one_model_format_error(saved: Path, tmp_path: Path, edit: str) -> None:
    folder = Path(shutil.copytree(saved, tmp_path / "copy"))
    change, expected = EDITS[edit]
    change(folder)
    with pytest.raises(ModelFormatError) as error:
        TransferClassifier.load(folder)
    message = str(error.value)
    assert expected in message
    assert str(folder) in message


def test_the_cli_reports_an_edited_folder_in_one_line(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hubtransfer._cli import main

    folder = Path(shutil.copytree(saved, tmp_path / "copy"))
    _edit(lambda m: m["params"].update(colour="blue"))(folder)
    assert main(["predict", str(folder), str(folder)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hubtransfer predict: error: The model")
