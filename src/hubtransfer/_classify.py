"""Classifying images with a pre-trained classification backbone (ImageNet)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ._backbone import Backbone, load_backbone, resolve_spec
from ._exceptions import InvalidParameterError
from ._labels import LabelMap, Prediction
from ._spec import BackboneSpec

__all__ = ["Classification", "ImageClassifier", "classify"]

ImageInput = str | os.PathLike[str] | bytes | np.ndarray
_DEFAULT_CLASSIFIER: Final = "efficientnet_lite0_embedded_classifier"


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """The top-k classes of one image.

    Attributes:
        source: The image's path, or ``"<array i>"`` / ``"<bytes i>"``.
        predictions: Best first; ``score`` is a softmax probability.
    """

    source: str
    predictions: tuple[Prediction, ...]

    @property
    def top(self) -> Prediction:
        """The best prediction."""
        return self.predictions[0]

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dict."""
        return {
            "source": self.source,
            "predictions": [
                {"label": p.label, "index": p.index, "score": p.score} for p in self.predictions
            ],
        }


def _describe(image: ImageInput, position: int) -> str:
    if isinstance(image, np.ndarray):
        return f"<array {position}>"
    if isinstance(image, bytes):
        return f"<bytes {position}>"
    return os.fspath(image)


def _as_classifier_spec(backbone: str | BackboneSpec) -> BackboneSpec:
    spec = resolve_spec(backbone)
    if spec.output_kind == "feature_vector" and spec.companion is not None:
        # A feature-vector name stands for its network: use that network's classifier.
        spec = resolve_spec(spec.companion)
    if spec.output_kind != "classification":
        raise InvalidParameterError(
            f"The backbone {spec.name!r} outputs feature vectors, not class scores, so it "
            "cannot classify images by itself. Pick a classification backbone "
            "(`hubtransfer backbones --kind classification`), or train a head on your own "
            "classes with hubtransfer.TransferClassifier."
        )
    return spec


class ImageClassifier:
    """A pre-trained classification backbone with its labels, ready to classify.

    Loads the backbone once; use it to classify many batches. For a one-off
    call, :func:`classify` does the same.

    Args:
        backbone: A classification backbone name, handle, spec or loaded
            :class:`Backbone`. A feature-vector name with a classification
            companion uses the companion.
        labels: Label map for the logits; by default the one the spec's
            ``label_set`` implies (ImageNet).
        background: For TF-Hub's 1001-way ImageNet classifiers, whether
            ``background`` may be predicted (it is excluded by default).

    Example:
        >>> import hubtransfer
        >>> classifier = hubtransfer.ImageClassifier()
        >>> classifier.labels.classes[:2]
        ('tench', 'goldfish')
    """

    def __init__(
        self,
        backbone: str | BackboneSpec | Backbone = _DEFAULT_CLASSIFIER,
        *,
        labels: LabelMap | None = None,
        background: bool = False,
    ) -> None:
        if isinstance(backbone, Backbone):
            spec = _as_classifier_spec(backbone.spec)
            self.backbone = backbone if spec is backbone.spec else load_backbone(spec)
        else:
            self.backbone = load_backbone(_as_classifier_spec(backbone))
        spec = self.backbone.spec
        self.labels: Final = LabelMap.for_backbone(spec) if labels is None else labels
        self.background: Final = background
        from ._preprocessing import Preprocessor

        self.preprocessor: Final = Preprocessor.from_spec(spec)

    def __call__(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        top_k: int = 5,
        batch_size: int = 32,
    ) -> list[Classification]:
        """Classifies images.

        Args:
            images: One image or a sequence: file paths, encoded bytes, or
                arrays ``[H, W]`` / ``[H, W, C]`` (uint8 0-255 or float 0-1).
            top_k: How many classes to return per image.
            batch_size: Images per forward pass.

        Returns:
            One :class:`Classification` per image, in input order.

        Raises:
            ImageDecodeError: If a file is not a decodable image (named).
            InvalidParameterError: For a bad ``top_k`` or array.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidParameterError(
                f"The 'top_k' parameter of classify must be a positive int. Got {top_k!r} instead."
            )
        batch: Sequence[ImageInput]
        if isinstance(images, (str, bytes, os.PathLike, np.ndarray)):
            batch = [images]
        else:
            batch = list(images)
        if not batch:
            return []
        pixels = self.preprocessor.batch(batch)
        logits = self.backbone.predict(pixels, batch_size=batch_size)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        decoded = self.labels.top_k(probabilities, k=top_k, include_offset_columns=self.background)
        return [
            Classification(source=_describe(image, i), predictions=tuple(predictions))
            for i, (image, predictions) in enumerate(zip(batch, decoded, strict=True))
        ]


def classify(
    images: ImageInput | Sequence[ImageInput],
    *,
    backbone: str | BackboneSpec | Backbone = _DEFAULT_CLASSIFIER,
    top_k: int = 5,
    background: bool = False,
    batch_size: int = 32,
) -> list[Classification]:
    """Classifies images into ImageNet (or the backbone's) classes.

    Runs offline on the embedded EfficientNet-Lite0 by default.

    Args:
        images: One image or a sequence: file paths, encoded bytes, or arrays.
        backbone: A classification backbone name, handle, spec or
            :class:`Backbone`.
        top_k: How many classes to return per image.
        background: Whether TF-Hub's ``background`` class may be predicted.
        batch_size: Images per forward pass.

    Returns:
        One :class:`Classification` per image, in input order.

    Example:
        >>> import hubtransfer
        >>> from skimage import data
        >>> [result] = hubtransfer.classify(data.chelsea(), top_k=3)
        >>> result.top.label in {"tabby", "tiger cat", "Egyptian cat"}
        True
    """
    classifier = ImageClassifier(backbone, background=background)
    return classifier(images, top_k=top_k, batch_size=batch_size)


def expand_image_arguments(arguments: Sequence[str], *, recursive: bool = False) -> list[Path]:
    """Expands CLI arguments: files stay, folders become their images (sorted)."""
    from ._preprocessing import IMAGE_EXTENSIONS

    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            paths.extend(
                sorted(
                    p
                    for p in (path.rglob("*") if recursive else path.iterdir())
                    if not p.is_dir()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                    and p.suffix.lower() in IMAGE_EXTENSIONS
                )
            )
        else:
            paths.append(path)
    return paths
