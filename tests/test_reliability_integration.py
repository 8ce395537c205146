"""fit(on_bad_image=...), predict on a damaged file and `hubtransfer check`: the doctor wired in."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import ImageDecodeError, InvalidParameterError, TransferClassifier
from hubtransfer._cli import main
from hubtransfer.testing import tiny_spec

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}
FAST = {"epochs": 3, "learning_rate": 0.3, "batch_size": 8, "verbose": 0}


def colour_folder(root: Path, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            noise = rng.normal(0.0, 25.0, (32, 32, 3))
            pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:02d}.jpg", quality=95)
    return root


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[: len(data) * 2 // 3]


@pytest.fixture(scope="module")
def spec(tiny_models: dict[str, Path]) -> hubtransfer.BackboneSpec:
    return tiny_spec(tiny_models["fv"], name="reliability_tiny_fv")


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    root = colour_folder(tmp_path / "data")
    (root / "red" / "99.jpg").write_bytes(truncated_jpeg())
    (root / "blue" / "98.jpg").write_bytes(b"")
    return root


def test_fit_raises_before_training_listing_every_bad_file(
    damaged: Path, spec: hubtransfer.BackboneSpec
) -> None:
    model = TransferClassifier(backbone=spec, **FAST)
    with pytest.raises(ImageDecodeError) as info:
        model.fit(damaged)
    message = str(info.value)
    assert message.startswith("2 of 20 image files cannot be used for training:\n")
    assert f"{str(damaged / 'blue' / '98.jpg')!r} is empty (0 bytes)" in message
    assert f"{str(damaged / 'red' / '99.jpg')!r} could not be decoded" in message
    assert "on_bad_image='skip'" in message
    assert not hasattr(model, "trainer_")


def test_fit_skips_bad_files_and_splits_like_the_doctor(
    damaged: Path, spec: hubtransfer.BackboneSpec
) -> None:
    model = TransferClassifier(backbone=spec, on_bad_image="skip", seed=4, **FAST).fit(damaged)
    assert sorted(bad.path.name for bad in model.skipped_images_) == ["98.jpg", "99.jpg"]
    report = hubtransfer.check_dataset(damaged, validation=0.2, seed=4)
    assert model.split_ is not None
    assert set(model.split_.validation.paths) == {
        record.path for record in report.images if record.subset == "validation"
    }
    assert set(model.split_.train.paths) == {
        record.path for record in report.images if record.subset == "train"
    }


def test_a_refit_on_cached_features_hashes_instead_of_decoding(
    tmp_path: Path, spec: hubtransfer.BackboneSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubtransfer import _doctor

    root = colour_folder(tmp_path / "data")
    TransferClassifier(backbone=spec, **FAST).fit(root)
    decoded: list[int] = []
    original = _doctor._Decoder.problem
    monkeypatch.setattr(
        _doctor._Decoder,
        "problem",
        lambda self, data: decoded.append(1) or original(self, data),
    )
    TransferClassifier(backbone=spec, **FAST).fit(root)
    assert decoded == []  # every file's features were cached, so it is known to decode
    TransferClassifier(backbone=spec, cache_features=False, **FAST).fit(root)
    assert len(decoded) == 18


def test_predict_names_a_damaged_file(tmp_path: Path, spec: hubtransfer.BackboneSpec) -> None:
    model = TransferClassifier(backbone=spec, **FAST).fit(colour_folder(tmp_path / "data"))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(truncated_jpeg())
    good = tmp_path / "data" / "red" / "00.jpg"
    with pytest.raises(ImageDecodeError) as info:
        model.predict([good, bad])
    message = str(info.value)
    assert message.startswith("1 of 2 image files cannot be decoded:\n")
    assert repr(str(bad)) in message and "on_bad_image" not in message


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"on_bad_image": "ignore"}, "'on_bad_image' parameter of TransferClassifier"),
        ({"max_image_pixels": 0}, "'max_image_pixels' parameter of TransferClassifier"),
    ],
)
def test_new_parameters_are_validated(
    tmp_path: Path, spec: hubtransfer.BackboneSpec, params: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        TransferClassifier(backbone=spec, **params, **FAST).fit(tmp_path)  # type: ignore[arg-type]


def test_max_image_pixels_reaches_the_preprocessor_and_survives_save(
    tmp_path: Path, spec: hubtransfer.BackboneSpec
) -> None:
    root = colour_folder(tmp_path / "data")
    with pytest.raises(ImageDecodeError, match="more than the limit of 1,000"):
        TransferClassifier(backbone=spec, max_image_pixels=1000, **FAST).fit(root)
    model = TransferClassifier(backbone=spec, max_image_pixels=5000, on_bad_image="skip", **FAST)
    model.fit(root)
    assert model.preprocessor_.max_pixels == 5000
    loaded = TransferClassifier.load(model.save(tmp_path / "model"))
    assert (loaded.max_image_pixels, loaded.on_bad_image) == (5000, "skip")
    assert loaded.preprocessor_.max_pixels == 5000


# The command line ----------------------------------------------------------------------------


def test_check_reports_and_exits_1_on_unusable_files(
    damaged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", str(damaged)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith(
        f"Checked 20 images in 3 classes in {str(damaged)!r}: 18 usable, 2 unusable"
    )
    assert "  'blue/98.jpg' is empty (0 bytes)" in out
    assert err.strip() == (
        "hubtransfer check: error: 2 of 20 image files cannot be used for training. Remove or "
        "replace them, or write a cleaned copy with --fix-into CLEAN_DIR."
    )


def test_check_json(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(damaged), "--json", "--min-size", "64"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["totals"]["bad"] == 2
    assert data["settings"]["min_size"] == 64
    assert len([w for w in data["warnings"] if w["kind"] == "too small"]) == 18


def test_check_fix_into(damaged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean"
    code = main(["check", str(damaged), "--fix-into", str(clean)])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert f"Wrote 18 images to {str(clean)!r}: 18 copied, 0 converted; 2 dropped." in out
    assert main(["check", str(clean)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("Training can use every file.")


def test_check_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_check_max_pixels(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(damaged), "--max-pixels", "100", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["bad"] == 20 and data["settings"]["max_pixels"] == 100
    assert main(["check", str(damaged), "--max-pixels", "0", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["settings"]["max_pixels"] is None


def test_train_on_bad_image_skip(
    damaged: Path,
    tmp_path: Path,
    spec: hubtransfer.BackboneSpec,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hubtransfer.register_backbone(spec, replace=True)
    try:
        out = str(tmp_path / "model")
        assert (
            main(
                [
                    "train",
                    str(damaged),
                    "--out",
                    out,
                    "--backbone",
                    spec.name,
                    "--epochs",
                    "2",
                    "--quiet",
                ]
            )
            == 1
        )
        assert "2 of 20 image files cannot be used for training" in capsys.readouterr().err
        code = main(
            [
                "train",
                str(damaged),
                "--out",
                out,
                "--backbone",
                spec.name,
                "--epochs",
                "2",
                "--on-bad-image",
                "skip",
            ]
        )
        assert code == 0
        assert "Skipped 2 of 20 image files that cannot be decoded" in capsys.readouterr().err
    finally:
        hubtransfer.default_registry().unregister(spec.name)
