"""Mixed precision: what runs in reduced precision, where the hardware supports it, and
the check that it agrees with float32.

A TF-Hub backbone is a SavedModel whose graph fixes its dtypes: a Keras mixed-precision
policy changes only the layers Keras builds, not the backbone that ``hub.KerasLayer``
wraps. So hubtransfer asks TensorFlow's graph optimizer (grappler) to rewrite the
backbone's graph instead, for the calls it makes and only for them:

- ``"mixed_float16"``: grappler's ``auto_mixed_precision`` pass, which runs convolutions
  and matrix products in float16 on an NVIDIA GPU of compute capability 7.0 or newer
  (tensor cores), keeping variables and numerically sensitive ops in float32. Fine-tuning
  then also scales the loss (``tf_keras.mixed_precision.LossScaleOptimizer``) so small
  float16 gradients do not underflow.
- ``"mixed_bfloat16"``: the ``auto_mixed_precision_onednn_bfloat16`` pass, which does the
  same in bfloat16 on the CPU through oneDNN. It is fast only on CPUs with native bfloat16
  instructions (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``); elsewhere it is
  emulated, and measured slower than float32.

Both rewrite feature extraction (fit, predict, evaluate) and fine-tuning's forward and
backward passes. The Dense head is trained on cached features in float32: it is a few
thousand multiply-adds per image, and reduced precision would save nothing there.
Grappler's options are process-wide: they are set around hubtransfer's own calls and
restored after, so TensorFlow code running in other threads at the same time would be
rewritten too.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from ._exceptions import InvalidParameterError

__all__ = [
    "MIN_PRECISION_AGREEMENT",
    "Precision",
    "PrecisionCheck",
    "PrecisionSupport",
    "precision_support",
]

Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
"""The ``precision`` a :class:`TransferClassifier` may be asked for."""
ResolvedPrecision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
PRECISIONS: Final = get_args(Precision)

MIN_PRECISION_AGREEMENT: Final = 0.99
"""Fit warns when fewer of the checked images get the same class in reduced precision."""
CHECK_IMAGES: Final = 256
"""Most images the agreement check runs through the backbone twice."""

_GRAPPLER_OPTIONS: Final[Mapping[str, str]] = {
    "mixed_float16": "auto_mixed_precision",
    "mixed_bfloat16": "auto_mixed_precision_onednn_bfloat16",
}
_NATIVE_BFLOAT16_FLAGS: Final = frozenset({"avx512_bf16", "amx_bf16"})
_FLOAT16_COMPUTE_CAPABILITY: Final = (7, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrecisionSupport:
    """What this machine offers for reduced precision, as :func:`precision_support` finds it.

    Attributes:
        gpus: The GPUs TensorFlow sees, by name.
        gpu_compute_capabilities: Their CUDA compute capabilities, in the same order
            (``None`` where TensorFlow does not report one).
        cpu_bfloat16_flags: The native bfloat16 instruction sets the CPU reports
            (``avx512_bf16``, ``amx_bf16``); empty where it has none.

    Example:
        >>> import hubtransfer
        >>> support = hubtransfer.PrecisionSupport(
        ...     gpus=(), gpu_compute_capabilities=(), cpu_bfloat16_flags=frozenset())
        >>> support.best
        'float32'
    """

    gpus: tuple[str, ...] = ()
    gpu_compute_capabilities: tuple[tuple[int, int] | None, ...] = ()
    cpu_bfloat16_flags: frozenset[str] = frozenset()

    @property
    def float16(self) -> bool:
        """Whether a GPU runs float16 fast (compute capability 7.0 or newer)."""
        return any(
            c is not None and c >= _FLOAT16_COMPUTE_CAPABILITY
            for c in self.gpu_compute_capabilities
        )

    @property
    def native_cpu_bfloat16(self) -> bool:
        """Whether the CPU has bfloat16 instructions (else oneDNN emulates them)."""
        return bool(self.cpu_bfloat16_flags & _NATIVE_BFLOAT16_FLAGS)

    @property
    def best(self) -> ResolvedPrecision:
        """What ``precision="auto"`` picks: the reduced precision that is faster here, if any."""
        if self.float16:
            return "mixed_float16"
        if self.native_cpu_bfloat16 and not self.gpus:
            return "mixed_bfloat16"
        return "float32"

    def describe(self) -> str:
        """One line for error messages: the GPUs and the CPU's bfloat16 support."""
        if self.gpus:
            gpus = ", ".join(
                f"{name} (compute capability {'unknown' if c is None else f'{c[0]}.{c[1]}'})"
                for name, c in zip(self.gpus, self.gpu_compute_capabilities, strict=True)
            )
        else:
            gpus = "no GPU visible to TensorFlow"
        flags = sorted(self.cpu_bfloat16_flags)
        cpu = f"a CPU with {', '.join(flags)}" if flags else "a CPU without native bfloat16"
        return f"this machine has {gpus} and {cpu}"


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def precision_support() -> PrecisionSupport:
    """Finds the GPUs TensorFlow sees and the CPU's bfloat16 instructions.

    Returns:
        A :class:`PrecisionSupport`; its ``best`` is what ``precision="auto"`` picks.

    Example:
        >>> import hubtransfer
        >>> hubtransfer.precision_support().best in ("float32", "mixed_float16", "mixed_bfloat16")
        True
    """
    import tensorflow as tf

    names: list[str] = []
    capabilities: list[tuple[int, int] | None] = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(str(details.get("device_name", device.name)))
        capability = details.get("compute_capability")
        capabilities.append(None if capability is None else (capability[0], capability[1]))
    return PrecisionSupport(
        gpus=tuple(names),
        gpu_compute_capabilities=tuple(capabilities),
        cpu_bfloat16_flags=_cpu_flags() & _NATIVE_BFLOAT16_FLAGS,
    )


def check_precision_parameter(precision: object, *, owner: str) -> None:
    """Raises :class:`InvalidParameterError` unless ``precision`` is one of :data:`PRECISIONS`."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InvalidParameterError(
            f"The 'precision' parameter of {owner} must be one of "
            f"{', '.join(repr(p) for p in PRECISIONS)}. Got {precision!r} instead."
        )


def resolve_precision(
    precision: Precision,
    *,
    owner: str,
    support: PrecisionSupport | None = None,
    strict: bool = True,
) -> ResolvedPrecision:
    """The precision that will run: ``"auto"`` becomes what the hardware supports.

    Args:
        precision: The requested precision.
        owner: The class whose parameter it is, for messages.
        support: The machine's support (default: :func:`precision_support`).
        strict: Raise for a precision this machine cannot run; with False (loading a
            model trained elsewhere) fall back to float32 with a warning.

    Raises:
        InvalidParameterError: For ``"mixed_float16"`` without a GPU of compute capability
            7.0 or newer, or ``"mixed_bfloat16"`` when TensorFlow runs on a GPU.
    """
    check_precision_parameter(precision, owner=owner)
    if precision == "float32":
        return "float32"
    support = precision_support() if support is None else support
    if precision == "auto":
        return support.best
    problem = None
    if precision == "mixed_float16" and not support.float16:
        problem = (
            f"The 'precision' parameter of {owner} is 'mixed_float16', which needs an NVIDIA "
            f"GPU of compute capability 7.0 or newer; {support.describe()}."
        )
    elif precision == "mixed_bfloat16" and support.gpus:
        problem = (
            f"The 'precision' parameter of {owner} is 'mixed_bfloat16', which rewrites the "
            f"backbone for the CPU (oneDNN); {support.describe()}, where TensorFlow runs the "
            "backbone and mixed_bfloat16 would change nothing."
        )
    if problem is not None:
        if strict:
            raise InvalidParameterError(
                f"{problem} Use precision='auto' to take what the hardware offers, or 'float32'."
            )
        warnings.warn(f"{problem} Running in float32 instead.", UserWarning, stacklevel=3)
        return "float32"
    if precision == "mixed_bfloat16" and not support.native_cpu_bfloat16:
        warnings.warn(
            "precision='mixed_bfloat16' runs, but this CPU has no native bfloat16 "
            "instructions (avx512_bf16 or amx_bf16), so oneDNN emulates them: expect it to "
            "be slower than float32, not faster. Use precision='auto' to take reduced "
            "precision only where it is faster.",
            UserWarning,
            stacklevel=3,
        )
    return precision


@contextlib.contextmanager
def reduced_precision(precision: ResolvedPrecision) -> Iterator[None]:
    """Rewrites the TensorFlow functions called inside the block in ``precision``.

    TensorFlow reads grappler's options at each function call, so a ``tf.function``
    traced before the block runs in reduced precision inside it and in float32 after.
    Does nothing for ``"float32"``.
    """
    option = _GRAPPLER_OPTIONS.get(precision)
    if option is None:
        yield
        return
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({option: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({option: bool(before.get(option, False))})


def loss_scaled(optimizer: Any, precision: ResolvedPrecision) -> Any:
    """Wraps ``optimizer`` in dynamic loss scaling for float16 (whose gradients underflow)."""
    if precision != "mixed_float16":
        return optimizer
    import tf_keras

    return tf_keras.mixed_precision.LossScaleOptimizer(optimizer)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrecisionCheck:
    """How reduced precision agreed with float32 on a sample, measured at fit.

    The same images run through the fitted backbone in float32 and in the
    reduced precision; the fitted head classifies both sets of features.

    Attributes:
        precision: The reduced precision checked (``"mixed_float16"`` or ``"mixed_bfloat16"``).
        images: How many images were checked (validation images first, else training ones).
        top1_agreement: Fraction of them given the same class both ways.
        relative_l2: ``||f_reduced - f_float32|| / ||f_float32||`` over all their features.
        max_probability_difference: Largest absolute difference of a class probability.
        min_agreement: The ``top1_agreement`` below which fit warned.

    Example:
        >>> import hubtransfer
        >>> check = hubtransfer.PrecisionCheck(precision="mixed_bfloat16", images=256,
        ...     top1_agreement=1.0, relative_l2=0.035, max_probability_difference=0.02)
        >>> check.passed
        True
    """

    precision: str
    images: int
    top1_agreement: float
    relative_l2: float
    max_probability_difference: float
    min_agreement: float = MIN_PRECISION_AGREEMENT

    @property
    def passed(self) -> bool:
        """Whether agreement reached ``min_agreement`` (and the rewrite changed anything)."""
        return self.top1_agreement >= self.min_agreement and self.relative_l2 > 0

    def format(self) -> str:
        """One line, as fit prints it."""
        return (
            f"{self.precision} vs float32 on {self.images} images: top-1 agreement "
            f"{self.top1_agreement:.2%}, feature relative L2 {self.relative_l2:.2%}, "
            f"largest probability difference {self.max_probability_difference:.3f}"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (saved in ``hubtransfer.json``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PrecisionCheck:
        """The inverse of :meth:`to_json`."""
        return cls(
            precision=str(data["precision"]),
            images=int(data["images"]),
            top1_agreement=float(data["top1_agreement"]),
            relative_l2=float(data["relative_l2"]),
            max_probability_difference=float(data["max_probability_difference"]),
            min_agreement=float(data.get("min_agreement", MIN_PRECISION_AGREEMENT)),
        )


def check_agreement(
    forward: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    pixels: npt.NDArray[np.float32],
    predict_proba: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    *,
    precision: ResolvedPrecision,
    min_agreement: float = MIN_PRECISION_AGREEMENT,
) -> PrecisionCheck:
    """Runs ``pixels`` through ``forward`` in float32 and in ``precision``; compares.

    Warns when top-1 agreement is below ``min_agreement``, or when the rewrite changed
    no feature at all (the reduced-precision pass did not apply on this build).
    """
    reference = np.asarray(forward(pixels), np.float64)
    with reduced_precision(precision):
        reduced = np.asarray(forward(pixels), np.float64)
    norm = float(np.linalg.norm(reference))
    relative_l2 = float(np.linalg.norm(reduced - reference) / norm) if norm else 0.0
    expected = predict_proba(reference.astype(np.float32))
    actual = predict_proba(reduced.astype(np.float32))
    check = PrecisionCheck(
        precision=precision,
        images=len(pixels),
        top1_agreement=float(np.mean(expected.argmax(1) == actual.argmax(1))),
        relative_l2=relative_l2,
        max_probability_difference=float(np.abs(expected - actual).max()),
        min_agreement=min_agreement,
    )
    if check.relative_l2 == 0:
        warnings.warn(
            f"precision={precision!r} changed no feature of the {check.images} images "
            "checked: TensorFlow did not rewrite the backbone (for mixed_bfloat16, is oneDNN "
            "off, TF_ENABLE_ONEDNN_OPTS=0?). The model runs as in float32.",
            UserWarning,
            stacklevel=3,
        )
    elif not check.passed:
        warnings.warn(
            f"Reduced precision disagrees with float32: {check.format()} (below "
            f"{min_agreement:.0%}). Predictions in {precision} differ from float32 ones; "
            "use precision='float32' if that matters.",
            UserWarning,
            stacklevel=3,
        )
    return check
