"""Fine-tuning: after the head converges on cached features, train the top of the backbone.

Fine-tuning runs the backbone forward *and* backward for every image in
every epoch, so it costs far more than the cached-feature head (see
``docs/benchmarks.md``); it pays off when your images look unlike ImageNet.

BatchNorm layers stay in inference mode by default (``train_batch_norm=False``):
their moving statistics were estimated on millions of images, and re-estimating
them from small fine-tuning batches makes them noisy and, once the batch
statistics differ from the frozen head's expectations, wrecks the features the
head was trained on. Their scale and offset may still be trained.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._exceptions import InvalidParameterError
from ._precision import ResolvedPrecision, loss_scaled, reduced_precision

if TYPE_CHECKING:
    from ._backbone import Backbone
    from ._preprocessing import Preprocessor

__all__ = ["Augmentation", "FineTuneResult", "fine_tune", "trainable_groups"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Augmentation:
    """Random image changes applied while fine-tuning (never to cached features).

    Augmentation cannot combine with feature caching, since the features of
    an augmented image differ every epoch; it therefore applies only when
    the backbone is fine-tuned.

    Args:
        flip: Random horizontal flips.
        rotation: Largest rotation, as a fraction of a full turn (0.05 = 18 degrees).
        zoom: Largest zoom in or out, as a fraction.
        brightness: Largest brightness change, as a fraction of the value range.
        contrast: Largest contrast change, as a fraction.

    Example:
        >>> import hubtransfer
        >>> hubtransfer.Augmentation(rotation=0.1).rotation
        0.1
    """

    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        for name in ("rotation", "zoom", "brightness", "contrast"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise InvalidParameterError(
                    f"The {name!r} parameter of Augmentation must be a float in [0, 1). "
                    f"Got {value!r} instead."
                )

    def layers(self, *, seed: int, value_range: tuple[float, float]) -> Any:
        """The ``tf_keras`` preprocessing layers, as one Sequential model."""
        import tf_keras

        steps: list[Any] = []
        if self.flip:
            steps.append(tf_keras.layers.RandomFlip("horizontal", seed=seed))
        if self.rotation:
            steps.append(tf_keras.layers.RandomRotation(self.rotation, seed=seed + 1))
        if self.zoom:
            steps.append(tf_keras.layers.RandomZoom(self.zoom, seed=seed + 2))
        if self.brightness:
            steps.append(
                tf_keras.layers.RandomBrightness(
                    self.brightness, value_range=value_range, seed=seed + 3
                )
            )
        if self.contrast:
            steps.append(tf_keras.layers.RandomContrast(self.contrast, seed=seed + 4))
        return tf_keras.Sequential(steps, name="augmentation")


@dataclass(frozen=True, slots=True, kw_only=True)
class FineTuneResult:
    """What fine-tuning did."""

    trained_groups: tuple[str, ...]
    trained_variables: int
    epochs: int
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)

    def format(self) -> str:
        """One line: what was trained, for how long, and the last accuracies.

        Example:
            >>> import hubtransfer
            >>> result = hubtransfer.FineTuneResult(
            ...     trained_groups=("block6", "top"), trained_variables=8, epochs=2,
            ...     seconds=61.0, history={"accuracy": [0.8, 0.9], "val_accuracy": [0.7, 0.75]})
            >>> result.format()
            '2 layers (8 variables), 2 epochs in 61.0 s; accuracy 0.9000, val_accuracy 0.7500'
        """
        text = (
            f"{len(self.trained_groups)} layers ({self.trained_variables} variables), "
            f"{self.epochs} epochs in {self.seconds:.1f} s"
        )
        last = [
            f"{key} {values[-1]:.4f}"
            for key in ("accuracy", "val_accuracy")
            if (values := self.history.get(key))
        ]
        return text + ("; " + ", ".join(last) if last else "")


def trainable_groups(backbone: Backbone) -> list[str]:
    """The backbone's trainable layers, bottom to top, named by variable prefix.

    ``fine_tune(layers=N)`` trains the last ``N`` of these.
    """
    groups: list[str] = []
    for variable in backbone.layer.trainable_variables:
        group = variable.name.rsplit("/", 1)[0]
        if group not in groups:
            groups.append(group)
    return groups


def fine_tune(
    backbone: Backbone,
    head: Any,
    preprocessor: Preprocessor,
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[int],
    *,
    layers: int | Literal["all"] = "all",
    epochs: int = 3,
    learning_rate: float = 1e-5,
    batch_size: int = 32,
    train_batch_norm: bool = False,
    augmentation: Augmentation | None = None,
    validation: tuple[Sequence[str | os.PathLike[str]], Sequence[int]] | None = None,
    precision: ResolvedPrecision = "float32",
    seed: int = 0,
    verbose: int = 1,
) -> FineTuneResult:
    """Trains the top ``layers`` of a trainable backbone together with the head.

    Args:
        backbone: A backbone loaded with ``trainable=True``.
        head: The trained head (``tf_keras`` model, features in, probabilities out).
        preprocessor: The backbone's preprocessor.
        paths: Training image files.
        labels: Class index per file.
        layers: How many of the top :func:`trainable_groups` to train, or "all".
        epochs: Passes over the images.
        learning_rate: Adam's learning rate (keep it small: 1e-5 is typical).
        batch_size: Images per step.
        train_batch_norm: Whether BatchNorm runs in training mode (see the
            module docs for why the default is no).
        augmentation: Random image changes, or None.
        validation: Optional ``(paths, labels)``; its loss and accuracy are
            reported per epoch.
        precision: "float32", or "mixed_float16" / "mixed_bfloat16" to run the
            backbone's and head's forward and backward passes in reduced
            precision (grappler's rewrite; see :mod:`hubtransfer._precision`),
            with dynamic loss scaling for float16. Variables stay float32.
        seed: Seed for shuffling and augmentation.
        verbose: 0 silent, 1 one line per epoch.

    Returns:
        A :class:`FineTuneResult`; the backbone and head are updated in place.
    """
    import tensorflow as tf
    import tf_keras

    if not backbone.trainable:
        raise InvalidParameterError(
            "fine_tune needs a backbone loaded with trainable=True "
            "(hubtransfer.load_backbone(spec, trainable=True))."
        )
    groups = trainable_groups(backbone)
    if layers == "all":
        chosen = groups
    elif isinstance(layers, int) and not isinstance(layers, bool) and layers >= 1:
        chosen = groups[-layers:]
    else:
        raise InvalidParameterError(
            f"The 'layers' parameter of fine_tune must be a positive int or 'all'. "
            f"Got {layers!r} instead."
        )
    chosen_set = set(chosen)
    variables = [
        v for v in backbone.layer.trainable_variables if v.name.rsplit("/", 1)[0] in chosen_set
    ]
    variables += list(head.trainable_variables)
    n_classes = int(head.output_shape[-1])
    low, high = preprocessor.contract.value_range
    augment = augmentation.layers(seed=seed, value_range=(low, high)) if augmentation else None
    optimizer = loss_scaled(tf_keras.optimizers.Adam(learning_rate), precision)
    scaling = precision == "mixed_float16"
    loss_function = tf_keras.losses.CategoricalCrossentropy()

    @tf.function(reduce_retracing=True)  # type: ignore[untyped-decorator]
    def train_step(images: Any, targets: Any) -> tuple[Any, Any]:
        if augment is not None:
            images = augment(images, training=True)
            images = tf.clip_by_value(images, low, high)
        with tf.GradientTape() as tape:
            features = backbone.layer(images, training=train_batch_norm)
            probabilities = head(features, training=True)
            loss = loss_function(targets, probabilities)
            scaled = optimizer.get_scaled_loss(loss) if scaling else loss
        gradients = tape.gradient(scaled, variables)
        if scaling:
            gradients = optimizer.get_unscaled_gradients(gradients)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        hits = tf.reduce_sum(
            tf.cast(tf.argmax(probabilities, 1) == tf.argmax(targets, 1), tf.float32)
        )
        return loss * tf.cast(tf.shape(images)[0], tf.float32), hits

    @tf.function(reduce_retracing=True)  # type: ignore[untyped-decorator]
    def evaluate_step(images: Any, targets: Any) -> tuple[Any, Any]:
        probabilities = head(backbone.layer(images, training=False), training=False)
        loss = loss_function(targets, probabilities)
        hits = tf.reduce_sum(
            tf.cast(tf.argmax(probabilities, 1) == tf.argmax(targets, 1), tf.float32)
        )
        return loss * tf.cast(tf.shape(images)[0], tf.float32), hits

    def batches(files: Sequence[Any], classes: Sequence[int], shuffle: bool) -> Any:
        data = preprocessor.dataset(list(files), list(classes), batch_size=batch_size)
        data = data.unbatch()
        if shuffle:
            data = data.shuffle(min(len(files), 2048), seed=seed, reshuffle_each_iteration=True)
        return data.batch(batch_size).map(
            lambda x, y: (x, tf.one_hot(y, n_classes)), num_parallel_calls=2
        )

    train_data = batches(paths, labels, shuffle=True)
    validation_data = None if validation is None else batches(*validation, shuffle=False)
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    if validation_data is not None:
        history.update({"val_loss": [], "val_accuracy": []})
    started = time.perf_counter()
    tf_keras.utils.set_random_seed(seed)
    with reduced_precision(precision):
        _train(
            epochs,
            train_step,
            evaluate_step,
            train_data,
            validation_data,
            history,
            learning_rate=learning_rate,
            verbose=verbose,
        )
    return FineTuneResult(
        trained_groups=tuple(chosen),
        trained_variables=len(variables),
        epochs=epochs,
        seconds=time.perf_counter() - started,
        history=history,
    )


def _train(
    epochs: int,
    train_step: Any,
    evaluate_step: Any,
    train_data: Any,
    validation_data: Any,
    history: dict[str, list[float]],
    *,
    learning_rate: float,
    verbose: int,
) -> None:
    for epoch in range(epochs):
        totals = np.zeros(3)
        for images, targets in train_data:
            loss, hits = train_step(images, targets)
            totals += (float(loss), float(hits), int(images.shape[0]))
        history["loss"].append(totals[0] / totals[2])
        history["accuracy"].append(totals[1] / totals[2])
        line = f"Fine-tune epoch {epoch + 1}/{epochs} - loss {history['loss'][-1]:.4f}"
        line += f" - accuracy {history['accuracy'][-1]:.4f}"
        if validation_data is not None:
            totals = np.zeros(3)
            for images, targets in validation_data:
                loss, hits = evaluate_step(images, targets)
                totals += (float(loss), float(hits), int(images.shape[0]))
            history["val_loss"].append(totals[0] / totals[2])
            history["val_accuracy"].append(totals[1] / totals[2])
            line += f" - val_loss {history['val_loss'][-1]:.4f}"
            line += f" - val_accuracy {history['val_accuracy'][-1]:.4f}"
        if verbose:
            print(line, file=sys.stderr)
        if not math.isfinite(history["loss"][-1]):
            raise InvalidParameterError(
                f"Fine-tuning diverged (loss {history['loss'][-1]}) at epoch {epoch + 1}; "
                f"lower 'fine_tune_learning_rate' (it was {learning_rate})."
            )


def save_backbone(backbone: Backbone, folder: Path) -> None:
    """Writes a (fine-tuned) backbone as a TF-Hub-format SavedModel into ``folder``."""
    import tensorflow as tf
    import tf_keras

    height, width = backbone.spec.input_size
    inputs = tf_keras.Input((height, width, 3), dtype=tf.float32)
    model = tf_keras.Model(inputs, backbone.layer(inputs, training=False))
    tf.saved_model.save(model, str(folder))
