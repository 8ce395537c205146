"""Loaded backbones: a spec plus the frozen ``tensorflow_hub.KerasLayer`` it names."""

from __future__ import annotations

import hashlib
import re
import threading
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ._exceptions import HandleError, InvalidParameterError
from ._handles import redact_url, resolve_handle
from ._registry import default_registry
from ._spec import BackboneSpec, OutputKind

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["Backbone", "load_backbone", "resolve_spec", "spec_from_handle"]

_DEFAULT_INPUT_SIZE: Final = (224, 224)
_IMAGENET_WIDTHS: Final = {1001: ("imagenet", 1), 1000: ("imagenet", 0), 21843: ("imagenet21k", 0)}


def _looks_like_handle(text: str) -> bool:
    return (
        "/" in text
        or "\\" in text
        or text.startswith(("~", "."))
        or urllib.parse.urlsplit(text).scheme != ""
    )


def _static_input_size(loaded: Any) -> tuple[int, int] | None:
    """Reads a fixed (height, width) from a SavedModel's call signatures, if any."""
    # The loaded object's __call__ is a restored tf.function that lists its traces.
    call = loaded.__call__ if callable(loaded) else None
    for function in getattr(call, "concrete_functions", ()):
        args, _ = function.structured_input_signature
        for spec in args:
            shape = getattr(spec, "shape", None)
            if shape is not None and shape.rank == 4:
                height, width = shape[1], shape[2]
                if height is not None and width is not None:
                    return int(height), int(width)
    return None


def spec_from_handle(
    handle: str,
    *,
    output_kind: OutputKind | None = None,
    input_size: tuple[int, int] | None = None,
    name: str | None = None,
) -> BackboneSpec:
    """Builds a spec for an unregistered handle by inspecting the model.

    The input size comes from the SavedModel's signature when it is fixed,
    else from ``input_size`` (default 224x224). The output width is measured
    by running the model once. The output kind is ``output_kind`` if given;
    otherwise a handle that mentions ``classification``, or an output of
    1000, 1001 or 21843 columns, is taken for an ImageNet classifier.

    Args:
        handle: Any handle :func:`hubtransfer.resolve_handle` accepts.
        output_kind: ``"feature_vector"`` or ``"classification"``, if known.
        input_size: ``(height, width)`` for models with dynamic input size.
        name: Name for the spec; default ``custom_<hash of handle>``.

    Raises:
        HandleError: If the handle cannot be resolved or the model does not
            take a ``[batch, height, width, 3]`` image batch.
    """
    import tensorflow as tf

    path = resolve_handle(handle)
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:
        raise HandleError(
            f"The SavedModel for {redact_url(handle)!r} in {str(path)!r} cannot be loaded: "
            f"{error!r}. Check that it is a TF2 SavedModel (TF-Hub format)."
        ) from error
    static = _static_input_size(loaded)
    size = static or input_size or _DEFAULT_INPUT_SIZE
    try:
        output = loaded(tf.zeros((1, *size, 3), tf.float32))
    except Exception as error:
        raise HandleError(
            f"The model at {redact_url(handle)!r} does not accept a float32 image batch of "
            f"shape [1, {size[0]}, {size[1]}, 3]: {error!r}. Pass input_size=(h, w) if it "
            "needs another size."
        ) from error
    if isinstance(output, dict):
        raise HandleError(
            f"The model at {redact_url(handle)!r} returns a dict of outputs "
            f"({sorted(output)}); hubtransfer needs a model that returns one tensor. "
            "Wrap it in a tf.Module that selects the output, and save that."
        )
    width = int(output.shape[-1])
    if output_kind is None:
        mentions = "classification" in handle.lower()
        output_kind = (
            "classification" if mentions or width in _IMAGENET_WIDTHS else "feature_vector"
        )
    label_set, offset = _IMAGENET_WIDTHS.get(width, (None, 0))
    digest = hashlib.sha1(handle.encode("utf8")).hexdigest()[:12]
    common: dict[str, Any] = {
        "name": name or f"custom_{digest}",
        "handle": handle,
        "input_size": size,
        "dynamic_size": static is None,
        "description": f"Inspected from {redact_url(handle)}",
        "source": "inspected from the SavedModel",
    }
    if output_kind == "classification":
        return BackboneSpec(
            output_kind="classification",
            num_classes=width,
            label_offset=offset,
            label_set=label_set,
            **common,
        )
    return BackboneSpec(output_kind="feature_vector", feature_dim=width, **common)


def resolve_spec(backbone: str | BackboneSpec) -> BackboneSpec:
    """Turns a backbone name, handle or spec into a :class:`BackboneSpec`.

    A registered name wins; a string that looks like a path or URL is
    inspected with :func:`spec_from_handle`.

    Raises:
        UnknownBackboneError: For an unknown name that is not a handle.
        InvalidParameterError: For anything but a str or a spec.
    """
    if isinstance(backbone, BackboneSpec):
        return backbone
    if not isinstance(backbone, str):
        raise InvalidParameterError(
            "A backbone must be a registered name, a handle or a BackboneSpec. "
            f"Got {backbone!r} instead."
        )
    registry = default_registry()
    if backbone in registry or not _looks_like_handle(backbone):
        return registry.get(backbone)
    return spec_from_handle(backbone)


def _hash_savedmodel(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    for file in files:
        relative = file.relative_to(path).as_posix()
        if relative.startswith("assets/") or relative == "fingerprint.pb":
            # The fingerprint changes with every save of the same weights.
            continue
        digest.update(relative.encode("utf8") + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class Backbone:
    """A loaded backbone: its spec and a frozen ``tensorflow_hub.KerasLayer``.

    Build one with :func:`load_backbone`. Calling it maps a batch of
    preprocessed images (see :attr:`preprocessing`) to features, or to
    logits for a classification backbone.

    Attributes:
        spec: The backbone's spec.
        path: The local SavedModel folder the handle resolved to.
    """

    def __init__(self, spec: BackboneSpec, *, path: Path, trainable: bool = False) -> None:
        self.spec: BackboneSpec = spec
        self.path: Path = path
        self._trainable = bool(trainable)
        self._layer: Any = None
        self._layer_lock = threading.Lock()
        self._content_hash: str | None = None
        self._forward: Any = None
        self._load_layer()

    @classmethod
    def _deferred(cls, spec: BackboneSpec, *, path: Path) -> Backbone:
        """A frozen backbone whose SavedModel is loaded at the first use of :attr:`layer`.

        For the classifier: a re-fit whose features are all cached, or an
        extraction on a TFLite copy that was converted and checked before,
        never needs the TensorFlow graph (loading it costs seconds and
        hundreds of MB).
        """
        backbone = cls.__new__(cls)
        backbone.spec = spec
        backbone.path = path
        backbone._trainable = False
        backbone._layer = None
        backbone._layer_lock = threading.Lock()
        backbone._content_hash = None
        backbone._forward = None
        return backbone

    def _load_layer(self) -> Any:
        import tensorflow_hub as hub

        with self._layer_lock:
            if self._layer is not None:
                return self._layer
            spec, path = self.spec, self.path
            height, width = spec.input_size
            try:
                self._layer = hub.KerasLayer(
                    str(path),
                    trainable=self._trainable,
                    input_shape=(height, width, 3),
                    name=re.sub(r"[^A-Za-z0-9_.\-]", "_", spec.name),
                )
            except Exception as error:
                raise HandleError(
                    f"tensorflow_hub cannot load the SavedModel of backbone {spec.name!r} from "
                    f"{str(path)!r}: {error!r}. Check that it is a TF2 SavedModel (TF-Hub "
                    "format); if it is a cache entry, delete the folder so it is fetched again."
                ) from error
            return self._layer

    @property
    def layer(self) -> Any:
        """The ``tensorflow_hub.KerasLayer``, usable in a ``tf_keras`` model."""
        layer = self._layer
        return layer if layer is not None else self._load_layer()

    @property
    def trainable(self) -> bool:
        """Whether the layer's weights are trainable (frozen by default)."""
        layer = self._layer
        return bool(layer.trainable) if layer is not None else self._trainable

    @property
    def output_dim(self) -> int:
        """Width of the output: feature dimension or number of logits."""
        return self.spec.output_dim

    @property
    def content_hash(self) -> str:
        """SHA-256 of the SavedModel files: identifies the exact weights."""
        if self._content_hash is None:
            self._content_hash = _hash_savedmodel(self.path)
        return self._content_hash

    def __call__(self, images: tf.Tensor, *, training: bool = False) -> tf.Tensor:
        """Runs the backbone on a batch of preprocessed float32 images."""
        return self.layer(images, training=training)

    def predict(
        self, images: np.ndarray | tf.Tensor | Iterable[Any], *, batch_size: int = 32
    ) -> np.ndarray:
        """Runs the frozen backbone over many preprocessed images.

        Args:
            images: A float32 array or tensor ``[N, height, width, 3]``, or an
                iterable of such batches (e.g. a ``tf.data.Dataset``; a
                dataset of ``(images, labels)`` pairs uses the images).
            batch_size: Images per forward pass when ``images`` is one array.

        Returns:
            A float32 array ``[N, output_dim]``.
        """
        import tensorflow as tf

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidParameterError(
                f"The 'batch_size' parameter of Backbone.predict must be a positive int. "
                f"Got {batch_size!r} instead."
            )
        if self._forward is None:
            self._forward = tf.function(lambda batch: self.layer(batch, training=False))
        if isinstance(images, (np.ndarray, tf.Tensor)):
            array = tf.convert_to_tensor(images, tf.float32)
            if array.shape.rank != 4 or array.shape[-1] != 3:
                raise InvalidParameterError(
                    f"Backbone.predict needs images shaped [N, height, width, 3]; got "
                    f"{tuple(array.shape)}. Preprocess them with hubtransfer.Preprocessor."
                )
            batches: Iterable[Any] = (
                array[start : start + batch_size]
                for start in range(0, int(array.shape[0]), batch_size)
            )
        else:
            batches = images
        outputs = []
        for batch in batches:
            if isinstance(batch, tuple):
                batch = batch[0]
            outputs.append(self._forward(tf.cast(batch, tf.float32)).numpy())
        if not outputs:
            return np.zeros((0, self.output_dim), np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"Backbone(name={self.spec.name!r}, handle={redact_url(self.spec.handle)!r})"


def load_backbone(backbone: str | BackboneSpec, *, trainable: bool = False) -> Backbone:
    """Loads a backbone by name, handle or spec.

    Args:
        backbone: A registered name (``"efficientnet_lite0_embedded_fv"``), a
            handle (TF-Hub/Kaggle URL, local folder, http(s) ``.tar.gz``,
            ``embedded://``) or a :class:`BackboneSpec`.
        trainable: Whether the weights can be trained (for fine-tuning).

    Returns:
        The loaded :class:`Backbone`.

    Raises:
        UnknownBackboneError: For an unknown name.
        HandleError: If the handle cannot be resolved or loaded.

    Example:
        >>> import hubtransfer
        >>> backbone = hubtransfer.load_backbone("efficientnet_lite0_embedded_fv")
        >>> backbone.output_dim
        1280
    """
    spec = resolve_spec(backbone)
    path = resolve_handle(spec.handle)
    return Backbone(spec, path=path, trainable=trainable)
