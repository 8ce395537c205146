"""Backbone specifications and the preprocessing contract they carry."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._exceptions import InvalidParameterError

__all__ = ["BackboneSpec", "OutputKind", "PreprocessingContract", "ResizeMethod"]

OutputKind = Literal["feature_vector", "classification"]
ResizeMethod = Literal["bilinear", "nearest", "bicubic", "area"]

_OUTPUT_KINDS: Final = ("feature_vector", "classification")
_RESIZE_METHODS: Final = ("bilinear", "nearest", "bicubic", "area")
_NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def _fail(owner: str, name: str, expected: str, value: object) -> InvalidParameterError:
    return InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PreprocessingContract:
    """How images must be prepared before they reach a backbone.

    The contract travels with every :class:`BackboneSpec` and with every saved
    model, so that a model is always fed the way it was trained.

    Pixels are first scaled into ``value_range`` (for TF-Hub image models this
    is ``(0.0, 1.0)``), then, if ``mean`` and ``std`` are given, normalised per
    channel as ``(x - mean) / std``.

    Args:
        input_size: ``(height, width)`` the backbone expects.
        value_range: ``(low, high)`` that uint8 ``0`` and ``255`` map to.
        mean: Optional per-channel mean subtracted after scaling.
        std: Optional per-channel standard deviation divided after scaling.
        resize_method: Interpolation used to resize to ``input_size``.

    Example:
        >>> import hubtransfer
        >>> contract = hubtransfer.PreprocessingContract(input_size=(224, 224))
        >>> contract.to_json()["value_range"]
        [0.0, 1.0]
        >>> hubtransfer.PreprocessingContract.from_json(contract.to_json()) == contract
        True
    """

    input_size: tuple[int, int]
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resize_method: ResizeMethod = "bilinear"

    def __post_init__(self) -> None:
        owner = "PreprocessingContract"
        size = self.input_size
        if (
            not isinstance(size, tuple)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise _fail(owner, "input_size", "a (height, width) tuple of positive ints", size)
        low_high = self.value_range
        if (
            not isinstance(low_high, tuple)
            or len(low_high) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in low_high)
            or not low_high[0] < low_high[1]
        ):
            raise _fail(
                owner, "value_range", "a finite (low, high) tuple with low < high", low_high
            )
        if (self.mean is None) != (self.std is None):
            raise _fail(owner, "mean", "given together with 'std' (or both None)", self.mean)
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is None:
                continue
            if (
                not isinstance(values, tuple)
                or len(values) != 3
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            ):
                raise _fail(owner, name, "a tuple of three finite numbers", values)
        if self.std is not None and any(v <= 0 for v in self.std):
            raise _fail(owner, "std", "strictly positive", self.std)
        if self.resize_method not in _RESIZE_METHODS:
            raise _fail(owner, "resize_method", f"one of {_RESIZE_METHODS}", self.resize_method)

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict; :meth:`from_json` inverts it."""
        return {
            "input_size": list(self.input_size),
            "value_range": [float(v) for v in self.value_range],
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "std": None if self.std is None else [float(v) for v in self.std],
            "resize_method": self.resize_method,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PreprocessingContract:
        """Builds a contract from :meth:`to_json`'s output.

        Raises:
            InvalidParameterError: If a field is missing or invalid.
        """
        try:
            mean = data.get("mean")
            std = data.get("std")
            return cls(
                input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
                value_range=(float(data["value_range"][0]), float(data["value_range"][1])),
                mean=None if mean is None else (float(mean[0]), float(mean[1]), float(mean[2])),
                std=None if std is None else (float(std[0]), float(std[1]), float(std[2])),
                resize_method=data.get("resize_method", "bilinear"),
            )
        except (KeyError, IndexError, TypeError, ValueError) as error:
            if isinstance(error, InvalidParameterError):
                raise
            raise InvalidParameterError(
                f"Cannot read a preprocessing contract from {data!r}: {error!r}. "
                "Expected the output of PreprocessingContract.to_json()."
            ) from error


@dataclass(frozen=True, slots=True, kw_only=True)
class BackboneSpec:
    """Describes one pre-trained backbone: where it lives and how to feed it.

    Specs are immutable; derive variants with :func:`dataclasses.replace`.

    Args:
        name: Registry name, lower case (``"efficientnet_lite0_fv"``).
        handle: TF-Hub / Kaggle URL, local SavedModel path, ``http(s)``
            ``.tar.gz`` URL, or an ``embedded://`` handle.
        input_size: ``(height, width)`` the model expects.
        output_kind: ``"feature_vector"`` or ``"classification"`` (logits).
        feature_dim: Length of the feature vector (feature-vector models), or
            ``None`` where unknown for a classifier.
        num_classes: Number of logits of a classifier (``None`` for feature
            vectors). TF-Hub ImageNet classifiers have 1001 with
            ``background`` first.
        label_offset: Index of the first real class in the logits (1 for
            TF-Hub's 1001-way ImageNet classifiers, else 0).
        label_set: Name of the label set the logits index (``"imagenet"``,
            ``"imagenet21k"``), or ``None``.
        value_range: ``(low, high)`` the model expects pixels in.
        mean: Optional per-channel mean applied after scaling.
        std: Optional per-channel standard deviation applied after scaling.
        resize_method: Interpolation used to resize images.
        dynamic_size: Whether the model accepts sizes other than ``input_size``.
        licence: Licence of the weights (SPDX id where one exists).
        description: One line about the model.
        tags: Free-form tags used by :func:`hubtransfer.list_backbones`.
        source: Where ``input_size`` and the output sizes were checked.
        companion: Name of the same network's other output kind, if any.

    Example:
        >>> import dataclasses, hubtransfer
        >>> spec = hubtransfer.BackboneSpec(
        ...     name="my_fv", handle="/models/my_fv", input_size=(96, 96),
        ...     output_kind="feature_vector", feature_dim=64)
        >>> spec.output_dim
        64
        >>> dataclasses.replace(spec, name="my_fv_128", input_size=(128, 128)).input_size
        (128, 128)
    """

    name: str
    handle: str
    input_size: tuple[int, int]
    output_kind: OutputKind
    feature_dim: int | None = None
    num_classes: int | None = None
    label_offset: int = 0
    label_set: str | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resize_method: ResizeMethod = "bilinear"
    dynamic_size: bool = False
    licence: str = "unknown"
    description: str = ""
    tags: frozenset[str] = field(default_factory=frozenset)
    source: str = ""
    companion: str | None = None

    def __post_init__(self) -> None:
        owner = "BackboneSpec"
        if not isinstance(self.name, str) or not _NAME_PATTERN.match(self.name):
            raise _fail(
                owner, "name", "a lower-case name of letters, digits, '_', '.' or '-'", self.name
            )
        if not isinstance(self.handle, str) or not self.handle.strip():
            raise _fail(owner, "handle", "a non-empty string", self.handle)
        if self.output_kind not in _OUTPUT_KINDS:
            raise _fail(owner, "output_kind", f"one of {_OUTPUT_KINDS}", self.output_kind)
        for name in ("feature_dim", "num_classes"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value <= 0
            ):
                raise _fail(owner, name, "a positive int or None", value)
        if self.output_kind == "feature_vector" and self.feature_dim is None:
            raise _fail(owner, "feature_dim", "set for a feature_vector backbone", None)
        if self.output_kind == "classification" and self.num_classes is None:
            raise _fail(owner, "num_classes", "set for a classification backbone", None)
        if self.output_kind == "feature_vector" and self.num_classes is not None:
            raise _fail(
                owner, "num_classes", "None for a feature_vector backbone", self.num_classes
            )
        if not isinstance(self.label_offset, int) or self.label_offset < 0:
            raise _fail(owner, "label_offset", "a non-negative int", self.label_offset)
        if self.num_classes is not None and self.label_offset >= self.num_classes:
            raise _fail(owner, "label_offset", "smaller than num_classes", self.label_offset)
        if not isinstance(self.tags, frozenset) or not all(isinstance(t, str) for t in self.tags):
            raise _fail(owner, "tags", "a frozenset of str", self.tags)
        # Validates input_size, value_range, mean, std and resize_method once, in one place.
        self.preprocessing  # noqa: B018

    @property
    def preprocessing(self) -> PreprocessingContract:
        """The preprocessing contract images must follow for this backbone."""
        return PreprocessingContract(
            input_size=self.input_size,
            value_range=self.value_range,
            mean=self.mean,
            std=self.std,
            resize_method=self.resize_method,
        )

    @property
    def output_dim(self) -> int:
        """Width of the model's output: ``feature_dim`` or ``num_classes``."""
        value = self.feature_dim if self.output_kind == "feature_vector" else self.num_classes
        assert value is not None  # guaranteed by __post_init__
        return value

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict; :meth:`from_json` inverts it."""
        return {
            "name": self.name,
            "handle": self.handle,
            "input_size": list(self.input_size),
            "output_kind": self.output_kind,
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "label_offset": self.label_offset,
            "label_set": self.label_set,
            "value_range": list(self.value_range),
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "resize_method": self.resize_method,
            "dynamic_size": self.dynamic_size,
            "licence": self.licence,
            "description": self.description,
            "tags": sorted(self.tags),
            "source": self.source,
            "companion": self.companion,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackboneSpec:
        """Builds a spec from :meth:`to_json`'s output.

        Raises:
            InvalidParameterError: If a field is missing or invalid.
        """
        try:
            contract = PreprocessingContract.from_json(data)
            return cls(
                name=data["name"],
                handle=data["handle"],
                input_size=contract.input_size,
                output_kind=data["output_kind"],
                feature_dim=data.get("feature_dim"),
                num_classes=data.get("num_classes"),
                label_offset=int(data.get("label_offset", 0)),
                label_set=data.get("label_set"),
                value_range=contract.value_range,
                mean=contract.mean,
                std=contract.std,
                resize_method=contract.resize_method,
                dynamic_size=bool(data.get("dynamic_size", False)),
                licence=data.get("licence", "unknown"),
                description=data.get("description", ""),
                tags=frozenset(data.get("tags", ())),
                source=data.get("source", ""),
                companion=data.get("companion"),
            )
        except (KeyError, TypeError) as error:
            raise InvalidParameterError(
                f"Cannot read a backbone spec from {data!r}: missing or invalid {error}. "
                "Expected the output of BackboneSpec.to_json()."
            ) from error
