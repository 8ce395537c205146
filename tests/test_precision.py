"""Mixed precision: hardware detection, resolution, the scoped rewrite, and the agreement
check, on the real reduced-precision path this CPU runs (oneDNN bfloat16)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import hubtransfer
from hubtransfer import InvalidParameterError, PrecisionCheck, PrecisionSupport, TransferClassifier
from hubtransfer._cli import build_parser
from hubtransfer._precision import reduced_precision, resolve_precision
from hubtransfer.testing import make_colour_folder, tiny_spec

NO_HARDWARE = PrecisionSupport()
BOTH_UNUSABLE = PrecisionSupport(
    gpus=("Tesla P100",),
    gpu_compute_capabilities=((6, 0),),
    cpu_bfloat16_flags=frozenset({"amx_bf16"}),
)
VOLTA = PrecisionSupport(gpus=("Tesla V100",), gpu_compute_capabilities=((7, 0),))
PASCAL = PrecisionSupport(gpus=("Tesla P100",), gpu_compute_capabilities=((6, 0),))
SAPPHIRE_RAPIDS = PrecisionSupport(cpu_bfloat16_flags=frozenset({"amx_bf16", "avx512_bf16"}))
ON_GPU = bool(hubtransfer.precision_support().gpus)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_colour_folder(tmp_path / "data", per_class=10, noise=40)


@pytest.mark.parametrize(
    ("support", "best"),
    [
        (NO_HARDWARE, "float32"),
        (VOLTA, "mixed_float16"),
        (PASCAL, "float32"),
        (SAPPHIRE_RAPIDS, "mixed_bfloat16"),
        (BOTH_UNUSABLE, "float32"),  # the backbone runs on the old GPU, not the CPU
    ],
)
def test_auto_picks_the_reduced_precision_the_hardware_runs_faster(
    support: PrecisionSupport, best: str
) -> None:
    assert support.best == best
    assert resolve_precision("auto", owner="X", support=support) == best
    assert resolve_precision("float32", owner="X", support=support) == "float32"


def test_float16_without_a_recent_gpu_is_an_error_naming_the_hardware() -> None:
    for support in (NO_HARDWARE, PASCAL):
        with pytest.raises(InvalidParameterError, match=r"compute capability 7\.0") as caught:
            resolve_precision("mixed_float16", owner="TransferClassifier", support=support)
        assert "precision='auto'" in str(caught.value)
    assert "6.0" in PASCAL.describe()
    assert resolve_precision("mixed_float16", owner="X", support=VOLTA) == "mixed_float16"


def test_bfloat16_is_refused_on_a_gpu_and_warns_on_an_emulating_cpu() -> None:
    with pytest.raises(InvalidParameterError, match="CPU"):
        resolve_precision("mixed_bfloat16", owner="X", support=VOLTA)
    with pytest.warns(UserWarning, match="slower than float32"):
        assert resolve_precision("mixed_bfloat16", owner="X", support=NO_HARDWARE) == (
            "mixed_bfloat16"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_precision("mixed_bfloat16", owner="X", support=SAPPHIRE_RAPIDS)


def test_loading_elsewhere_falls_back_to_float32_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="Running in float32"):
        assert (
            resolve_precision("mixed_float16", owner="X", support=NO_HARDWARE, strict=False)
            == "float32"
        )


def test_this_machine_is_described() -> None:
    support = hubtransfer.precision_support()
    assert support.best in ("float32", "mixed_float16", "mixed_bfloat16")
    assert "this machine has" in support.describe()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert support.native_cpu_bfloat16 == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_the_rewrite_applies_inside_the_block_only_and_options_are_restored() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(4, 16, 16, 3)).astype(np.float32))
    kernel = tf.constant(rng.normal(size=(3, 3, 3, 8)).astype(np.float32))
    forward = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"))
    before = tf.config.optimizer.get_experimental_options()
    reference = forward(images).numpy()  # traced before the block: still rewritten in it
    with reduced_precision("mixed_bfloat16"):
        reduced = forward(images).numpy()
    after = forward(images).numpy()
    relative = np.linalg.norm(reduced - reference) / np.linalg.norm(reference)
    assert 1e-4 < relative < 2e-2  # bfloat16 keeps 8 bits of mantissa: about 0.4%
    np.testing.assert_array_equal(after, reference)
    restored = tf.config.optimizer.get_experimental_options()
    assert not restored.get("auto_mixed_precision_onednn_bfloat16", False)
    assert {k: v for k, v in restored.items() if v} == {k: v for k, v in before.items() if v}
    with reduced_precision("float32"):
        np.testing.assert_array_equal(forward(images).numpy(), reference)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"precision": "half"}, "The 'precision' parameter of TransferClassifier must be one of"),
        ({"precision": None}, "'precision' parameter"),
        ({"precision": "mixed_bfloat16", "runtime": "tflite"}, "float32 only"),
    ],
)
def test_precision_is_validated_at_fit(
    params: dict[str, object], message: str, folder: Path
) -> None:
    model = TransferClassifier(**params)  # type: ignore[arg-type]
    assert model.get_params()["precision"] == params["precision"]
    with pytest.raises(InvalidParameterError, match=message):
        model.fit(folder)


@pytest.mark.skipif(ON_GPU, reason="a GPU is visible: float16 is supported here")
def test_float16_on_this_cpu_is_refused_at_fit(folder: Path) -> None:
    with pytest.raises(InvalidParameterError, match="'mixed_float16', which needs an NVIDIA"):
        TransferClassifier(precision="mixed_float16").fit(folder)


@pytest.mark.skipif(ON_GPU, reason="mixed_bfloat16 is the CPU path")
def test_bfloat16_fit_runs_for_real_and_is_checked_against_float32(
    tiny_models: dict[str, Path], folder: Path, isolated_cache: Path, tmp_path: Path
) -> None:
    spec = tiny_spec(tiny_models["fv"], name="precision_tiny_fv")
    options = {"epochs": 20, "learning_rate": 0.05, "seed": 0, "verbose": 0}
    reference = TransferClassifier(spec, **options).fit(folder)  # type: ignore[arg-type]
    model = TransferClassifier(spec, precision="mixed_bfloat16", **options)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # emulated here, and says so
        model.fit(folder)
    assert model.precision_ == "mixed_bfloat16"
    check = model.precision_check_
    assert isinstance(check, PrecisionCheck)
    assert check.precision == "mixed_bfloat16"
    assert check.images == 6  # the validation images (20% of 30)
    # The rewrite really ran, and bfloat16 stays close to float32 on this tiny network.
    assert 1e-4 < check.relative_l2 < 0.05
    assert 0.8 <= check.top1_agreement <= 1.0
    assert 0 <= check.max_probability_difference < 0.2
    assert check.passed == (check.top1_agreement >= hubtransfer.MIN_PRECISION_AGREEMENT)
    # Its features have a cache of their own: the float32 model's are not reused.
    assert (isolated_cache / "features-mixed_bfloat16").is_dir()
    features = model._features_of_files(list(model._files["train"][0]))
    float_features = reference._features_of_files(list(reference._files["train"][0]))
    assert not np.array_equal(features, float_features)
    np.testing.assert_allclose(features, float_features, rtol=0.05, atol=0.05)
    # Predictions run in bfloat16 too, and mostly agree with float32.
    agreement = np.mean(model.predict(folder) == reference.predict(folder))
    assert agreement >= 0.8
    saved = model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loaded = TransferClassifier.load(saved)
    assert loaded.precision == "mixed_bfloat16" and loaded.precision_ == "mixed_bfloat16"
    assert loaded.precision_check_ == check
    np.testing.assert_array_equal(loaded.predict_proba(folder), model.predict_proba(folder))
    assert reference.precision_ == "float32" and reference.precision_check_ is None


@pytest.mark.skipif(ON_GPU, reason="mixed_bfloat16 is the CPU path")
def test_bfloat16_fine_tuning_and_arrays_are_checked(
    tiny_models: dict[str, Path], folder: Path, isolated_cache: Path
) -> None:
    spec = tiny_spec(tiny_models["fv"], name="precision_tiny_fv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tuned = TransferClassifier(
            spec, precision="mixed_bfloat16", fine_tune="all", fine_tune_epochs=1, verbose=0
        ).fit(folder)
        images = np.random.default_rng(1).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
        from_arrays = TransferClassifier(spec, precision="mixed_bfloat16", epochs=2, verbose=0).fit(
            images, [0, 1] * 6, classes=["a", "b"]
        )
    assert tuned.fine_tune_result_ is not None
    assert np.isfinite(tuned.fine_tune_result_.history["loss"]).all()
    assert tuned.precision_check_ is not None and tuned.precision_check_.relative_l2 > 0
    assert from_arrays.precision_check_ is not None
    assert from_arrays.precision_check_.images == 12
    assert from_arrays.precision_check_.relative_l2 > 0


def test_precision_check_round_trips_through_json() -> None:
    check = PrecisionCheck(
        precision="mixed_float16",
        images=10,
        top1_agreement=0.9,
        relative_l2=0.01,
        max_probability_difference=0.3,
    )
    assert PrecisionCheck.from_json(check.to_json()) == check
    assert not check.passed
    assert "top-1 agreement 90.00%" in check.format()


def test_train_command_takes_precision() -> None:
    args = build_parser().parse_args(["train", "data", "--out", "m", "--precision", "auto"])
    assert args.precision == "auto"
    assert build_parser().parse_args(["train", "data", "--out", "m"]).precision == "float32"
