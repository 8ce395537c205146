"""Never lose a file: what `save`, `train --out`, `export` and `fix_into` may replace.

Each test hands a write a folder it must not touch (a folder of notes, the
training data, its parent, the current folder, the model being exported)
and proves, byte for byte, that it is still there. The kill tests stop a
real process with SIGKILL at the two commit points of a save.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from _hostile import FAST, assert_one_error_line, paused_at, run_cli, snapshot

import hubtransfer
from hubtransfer import InvalidParameterError, TransferClassifier
from hubtransfer._cli import main
from hubtransfer.testing import tiny_spec

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file semantics")


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "2024").mkdir(parents=True)
    (folder / "todo.txt").write_text("buy milk\n")
    (folder / "2024" / "diary.md").write_text("dear diary\n")
    return folder


@pytest.fixture
def fitted(tiny_backbone: hubtransfer.BackboneSpec, data: Path) -> TransferClassifier:
    return TransferClassifier(tiny_backbone, **FAST).fit(data)


def test_save_refuses_a_folder_of_notes_and_force_replaces_it(
    fitted: TransferClassifier, notes: Path
) -> None:
    before = snapshot(notes)
    with pytest.raises(InvalidParameterError, match="it is not a saved hubtransfer model") as error:
        fitted.save(notes)
    assert "todo.txt" in str(error.value) or "diary.md" in str(error.value)
    assert "force=True" in str(error.value)
    assert snapshot(notes) == before
    assert sorted(p.name for p in notes.parent.iterdir()) == ["data", "notes"]
    fitted.save(notes, force=True)
    assert TransferClassifier.load(notes).classes_.tolist() == fitted.classes_.tolist()
    assert not (notes / "todo.txt").exists()
    assert sorted(p.name for p in notes.parent.iterdir()) == ["data", "notes"]


def test_a_model_folder_with_a_file_added_is_not_replaced(
    fitted: TransferClassifier, tmp_path: Path
) -> None:
    model = fitted.save(tmp_path / "model")
    fitted.save(model)  # its own files only: replaced
    (model / "results.csv").write_text("run,accuracy\n1,0.97\n")
    with pytest.raises(InvalidParameterError, match=r"also files its hubtransfer\.json does not"):
        fitted.save(model)
    assert (model / "results.csv").read_text() == "run,accuracy\n1,0.97\n"


def test_save_never_replaces_the_training_data_even_forced(
    fitted: TransferClassifier, data: Path
) -> None:
    before = snapshot(data)
    for target in (data, data.parent, data / "red"):
        for force in (False, True):
            with pytest.raises(InvalidParameterError, match=r"never replaces|lies inside"):
                fitted.save(target, force=force)
    with pytest.raises(InvalidParameterError, match="lies inside the training data"):
        fitted.save(data / "model", force=True)
    assert snapshot(data) == before


def test_train_out_refuses_notes_data_parent_and_current_folder(
    tiny_backbone: hubtransfer.BackboneSpec,
    data: Path,
    notes: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = {folder: snapshot(folder) for folder in (data, notes)}
    train = ["train", str(data), "--backbone", tiny_backbone.name, "--epochs", "2", "--quiet"]
    cases = [
        (["--out", str(notes)], "is not a saved hubtransfer model"),
        (["--out", str(data), "--force"], "is the training data"),
        (["--out", str(data.parent), "--force"], "which hubtransfer never replaces"),
        (["--out", str(data / "blue" / "m"), "--force"], "lies inside the training data"),
    ]
    for extra, expected in cases:
        assert main([*train, *extra]) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("hubtransfer train: error: Cannot save the model to"), line
        assert expected in line, (expected, line)
    assert "pass --force" in _refusal(main, [*train, "--out", str(notes)], capsys)
    monkeypatch.chdir(notes)
    assert "is the current folder" in _refusal(main, [*train, "--out", ".", "--force"], capsys)
    for folder, before in kept.items():
        assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes"]


def _refusal(run: object, arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(arguments) == 1
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_train_out_dot_in_a_real_process_is_one_line(
    tiny_models: dict[str, Path], data: Path, notes: Path
) -> None:
    before = snapshot(notes)
    finished = run_cli(
        tiny_models, ["train", str(data), "--out", ".", "--quiet", "--epochs", "1"], cwd=notes
    )
    assert_one_error_line(finished, "Cannot save the model to '.'", "current folder")
    assert snapshot(notes) == before


def test_export_into_its_own_model_folder_is_refused(
    fitted: TransferClassifier, tmp_path: Path
) -> None:
    model_dir = fitted.save(tmp_path / "m")
    model = TransferClassifier.load(model_dir)
    with pytest.raises(InvalidParameterError, match="lies inside"):
        model.export(model_dir / "sub")
    with pytest.raises(InvalidParameterError, match="holds"):
        model.export(tmp_path, format="tflite")
    assert TransferClassifier.load(model_dir).classes_.tolist() == fitted.classes_.tolist()


def test_fix_into_refuses_the_data_folder_and_notes(data: Path, notes: Path) -> None:
    report = hubtransfer.check_dataset(data)
    before = snapshot(notes)
    with pytest.raises(InvalidParameterError, match="only written to a new or empty folder"):
        hubtransfer.fix_into(report, notes)
    with pytest.raises(InvalidParameterError, match="is the data folder"):
        hubtransfer.fix_into(report, data)
    assert snapshot(notes) == before


# --- Killed saves: the split always belongs to the model beside it ---------------------------

SAVE_TWO = """
    import sys
    import hubtransfer
    from hubtransfer.testing import tiny_spec

    model_path, data, target = sys.argv[1:]
    spec = tiny_spec(model_path, name="kill_tiny_fv")
    first, second = (
        hubtransfer.TransferClassifier(spec, epochs=2, verbose=0, seed=seed).fit(data)
        for seed in (1, 2)
    )
    import os
    pause = os.environ.pop("HUBTRANSFER_PAUSE_AT")
    first.save(target)
    os.environ["HUBTRANSFER_PAUSE_AT"] = pause
    second.save(target)
"""


@pytest.mark.parametrize(("step", "expected_seed"), [("folder:written", 1), ("folder:replaced", 2)])
def test_a_killed_save_leaves_a_model_and_its_own_split(
    tiny_models: dict[str, Path], data: Path, tmp_path: Path, step: str, expected_seed: int
) -> None:
    collection = hubtransfer.scan_image_folder(data)
    splits = [hubtransfer.stratified_split(collection, validation=0.2, seed=s) for s in (1, 2)]
    assert splits[0].validation.paths != splits[1].validation.paths  # the test can tell them apart
    target = tmp_path / "models" / "m"
    arguments = (str(tiny_models["fv"]), str(data), str(target))
    with paused_at(step, SAVE_TWO, *arguments, signal_file=tmp_path / "reached"):
        pass  # killed at the step
    loaded = TransferClassifier.load(target)
    assert loaded.seed == expected_seed
    assert loaded.split_ is not None
    # The split is the one its own fit made: same seed, same held-out files.
    assert loaded.split_.validation.paths == splits[expected_seed - 1].validation.paths
    leftovers = [p for p in target.parent.iterdir() if p.name != "m"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".m.")
    # The next save to the same target removes what the killed one left.
    other = TransferClassifier(tiny_spec(tiny_models["fv"], name="kill_tiny_fv"), **FAST).fit(data)
    other.save(target)
    assert [p.name for p in target.parent.iterdir()] == ["m"]
    np.testing.assert_allclose(
        TransferClassifier.load(target).predict_proba(data), other.predict_proba(data), atol=1e-6
    )


def test_a_live_writers_work_folder_is_not_removed(
    tiny_models: dict[str, Path], data: Path, tmp_path: Path
) -> None:
    from hubtransfer._folders import MODEL_FOLDER, clean_stale_partials

    target = tmp_path / "live" / "m"
    script = """
        import sys
        import hubtransfer
        from hubtransfer.testing import tiny_spec
        spec = tiny_spec(sys.argv[1], name="live_tiny_fv")
        hubtransfer.TransferClassifier(spec, epochs=1, verbose=0).fit(sys.argv[2]).save(sys.argv[3])
    """
    arguments = (str(tiny_models["fv"]), str(data), str(target))
    with paused_at("folder:written", script, *arguments, signal_file=tmp_path / "reached"):
        work = [p for p in target.parent.iterdir() if p.name.startswith(".m.")]
        assert len(work) == 1
        assert clean_stale_partials(target, MODEL_FOLDER) == []  # its writer holds the lock
        assert work[0].is_dir()
    assert clean_stale_partials(target, MODEL_FOLDER) == work  # now provably stale
    assert list(target.parent.iterdir()) == []
