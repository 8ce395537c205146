"""The head trainer: a Dense softmax head fitted on frozen backbone features."""

from __future__ import annotations

import contextlib
import math
import mmap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ._exceptions import DatasetError, InvalidParameterError, NotFittedError
from ._validation import bad_parameter, check_float, check_int

if TYPE_CHECKING:
    from ._backbone import Backbone

__all__ = ["HeadTrainer", "balanced_class_weights"]

_STREAM_CHUNK_BYTES: Final = 64 << 20
"""Bytes of features checked or read at a time when they are memory-mapped."""
_FAULT_AROUND_BYTES: Final = 64 << 10
"""What reading one page of a mapped file may map around it (Linux's default)."""
_STEPS_PER_EXECUTION: Final = 32

ClassWeight = Literal["balanced"] | Mapping[int, float] | None

_OWNER: Final = "HeadTrainer"


def balanced_class_weights(labels: npt.ArrayLike, n_classes: int) -> dict[int, float]:
    """Weights ``n_samples / (n_classes * count)``, as scikit-learn's "balanced".

    Example:
        >>> import hubtransfer
        >>> hubtransfer.balanced_class_weights([0, 0, 0, 1], 2)
        {0: 0.6666666666666666, 1: 2.0}
    """
    array = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(array, minlength=n_classes)
    return {
        int(c): float(len(array) / (n_classes * counts[c])) if counts[c] else 0.0
        for c in range(n_classes)
    }


class HeadTrainer:
    """Trains a Dense softmax head on features of a frozen backbone.

    Works on any ``[n, d]`` float features: from :func:`extract_features`,
    from a feature store, or from anywhere else. The trained head is an
    ordinary ``tf_keras`` model, and :meth:`combine` joins it to a backbone
    into one image-in, probabilities-out model.

    Args:
        epochs: Passes over the training features.
        batch_size: Features per gradient step.
        learning_rate: Adam's learning rate.
        dropout: Dropout rate before the output layer (0 for none).
        hidden_units: Width of an optional hidden ReLU layer.
        label_smoothing: Label smoothing of the cross-entropy loss.
        l2: L2 penalty on the head's kernels.
        class_weight: ``"balanced"``, a mapping class index → weight (classes
            left out weigh 1), or None.
        early_stopping: With validation data, stop when the validation loss
            has not improved for ``patience`` epochs and restore the best
            weights.
        patience: Epochs without improvement before stopping.
        seed: Seed for weight initialisation, dropout and shuffling.
        verbose: 0 silent, 1 one line per epoch.
        strategy: A ``tf.distribute.Strategy`` to train under (e.g.
            ``MirroredStrategy`` for several GPUs, ``MultiWorkerMirroredStrategy``
            for several machines), or None for the default device.
            ``batch_size`` is then the global batch, split across replicas.

    Example:
        >>> import numpy as np, hubtransfer
        >>> rng = np.random.default_rng(0)
        >>> features = rng.normal(size=(60, 4)).astype("float32")
        >>> labels = (features[:, 0] > 0).astype("int64")
        >>> trainer = hubtransfer.HeadTrainer(epochs=30, learning_rate=0.05, verbose=0)
        >>> trainer = trainer.fit(features, labels)
        >>> float((trainer.predict_proba(features).argmax(1) == labels).mean()) > 0.9
        True
    """

    def __init__(
        self,
        *,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        dropout: float = 0.0,
        hidden_units: int | None = None,
        label_smoothing: float = 0.0,
        l2: float = 0.0,
        class_weight: ClassWeight = None,
        early_stopping: bool = True,
        patience: int = 5,
        seed: int = 0,
        verbose: int = 1,
        strategy: Any = None,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.label_smoothing = label_smoothing
        self.l2 = l2
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.patience = patience
        self.seed = seed
        self.verbose = verbose
        self.strategy = strategy

    def validate(self, owner: str = _OWNER) -> None:
        """Checks every parameter, naming the first bad one in an InvalidParameterError."""
        check_int(self.epochs, "epochs", minimum=1, owner=owner)
        check_int(self.batch_size, "batch_size", minimum=1, owner=owner)
        if self.strategy is not None:
            import tensorflow as tf

            if not isinstance(self.strategy, tf.distribute.Strategy):
                raise bad_parameter(
                    "strategy", "a tf.distribute.Strategy or None", self.strategy, owner
                )
        check_float(
            self.learning_rate, "learning_rate", low=0.0, high=10.0, owner=owner, open_low=True
        )
        check_float(self.dropout, "dropout", low=0.0, high=1.0, owner=owner)
        if self.hidden_units is not None:
            check_int(self.hidden_units, "hidden_units", minimum=1, owner=owner)
        check_float(self.label_smoothing, "label_smoothing", low=0.0, high=1.0, owner=owner)
        check_float(self.l2, "l2", low=0.0, high=math.inf, owner=owner)
        weight = self.class_weight
        if not (weight is None or weight == "balanced" or isinstance(weight, Mapping)):
            raise bad_parameter(
                "class_weight",
                "'balanced', a mapping of class index to weight, or None",
                weight,
                owner,
            )
        if not isinstance(self.early_stopping, bool):
            raise bad_parameter("early_stopping", "a bool", self.early_stopping, owner)
        check_int(self.patience, "patience", minimum=1, owner=owner)
        check_int(self.seed, "seed", minimum=0, owner=owner)
        check_int(self.verbose, "verbose", minimum=0, owner=owner)

    def build_head(self, feature_dim: int, n_classes: int) -> Any:
        """Builds the untrained head: ``[n, feature_dim]`` → ``[n, n_classes]`` probabilities."""
        import tf_keras

        regularizer = tf_keras.regularizers.L2(self.l2) if self.l2 else None
        initializer = tf_keras.initializers.GlorotUniform(seed=self.seed)
        inputs = tf_keras.Input((feature_dim,), name="features")
        x = inputs
        if self.hidden_units:
            x = tf_keras.layers.Dense(
                self.hidden_units,
                activation="relu",
                kernel_regularizer=regularizer,
                kernel_initializer=initializer,
                name="hidden",
            )(x)
        if self.dropout:
            x = tf_keras.layers.Dropout(self.dropout, seed=self.seed, name="dropout")(x)
        outputs = tf_keras.layers.Dense(
            n_classes,
            activation="softmax",
            kernel_regularizer=regularizer,
            kernel_initializer=initializer,
            name="probabilities",
        )(x)
        return tf_keras.Model(inputs, outputs, name="head")

    def fit(
        self,
        features: npt.ArrayLike,
        labels: npt.ArrayLike,
        *,
        n_classes: int | None = None,
        validation_data: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    ) -> HeadTrainer:
        """Trains the head.

        Args:
            features: ``[n, d]`` features.
            labels: ``[n]`` integer class indexes.
            n_classes: Number of classes; default ``max(labels) + 1``.
            validation_data: Optional ``(features, labels)`` for the
                validation metrics and early stopping.

        Returns:
            ``self``, with ``head_`` and ``history_`` set.

        Raises:
            InvalidParameterError: For a bad parameter, or a ``class_weight``
                key that is not a class index.
            DatasetError: For features or labels of the wrong shape or type,
                labels out of range, or fewer than two classes.
        """
        import tensorflow as tf
        import tf_keras

        self.validate()
        x, y = _check_xy(features, labels, "features", "labels")
        classes = (
            int(y.max()) + 1
            if n_classes is None
            else check_int(n_classes, "n_classes", minimum=2, owner=_OWNER)
        )
        if n_classes is not None and int(y.max()) >= classes:
            raise DatasetError(f"A label is {int(y.max())}, but n_classes is {classes}.")
        if classes < 2:
            raise DatasetError(
                "A head needs at least 2 classes; every label is 0. Pass labels of two or more "
                "classes, or n_classes= if some classes have no training examples."
            )
        weights = _class_weights(self.class_weight, y, classes)
        tf_keras.utils.set_random_seed(self.seed)
        scope = self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()
        with scope:
            head = self.build_head(x.shape[1], classes)
            head.compile(
                optimizer=tf_keras.optimizers.Adam(self.learning_rate),
                loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing),
                metrics=["accuracy"],
                # Many small steps per call: the same updates in the same order, but a
                # Dense head's step is so cheap that one call per step is mostly overhead.
                steps_per_execution=_STEPS_PER_EXECUTION,
            )
        one_hot = np.eye(classes, dtype=np.float32)
        train = _batches(x, one_hot[y], batch_size=self.batch_size, seed=self.seed, shuffle=True)
        validation = None
        callbacks = []
        if validation_data is not None:
            vx, vy = _check_xy(*validation_data, "validation features", "validation labels")
            if int(vy.max()) >= classes:
                raise DatasetError(
                    f"A validation label is {int(vy.max())}, but there are {classes} classes "
                    f"(labels 0 to {classes - 1})."
                )
            if vx.shape[1] != x.shape[1]:
                raise DatasetError(
                    f"Validation features have {vx.shape[1]} columns, "
                    f"training features {x.shape[1]}."
                )
            validation = _batches(vx, one_hot[vy], batch_size=1024, seed=0, shuffle=False)
            if self.early_stopping:
                callbacks.append(
                    tf_keras.callbacks.EarlyStopping(
                        monitor="val_loss", patience=self.patience, restore_best_weights=True
                    )
                )
        options = tf.data.Options()
        options.autotune.enabled = False
        # Each worker takes every n-th batch element: works for in-memory and streamed data.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        history = head.fit(
            train.with_options(options),
            validation_data=None if validation is None else validation.with_options(options),
            epochs=self.epochs,
            class_weight=weights,
            callbacks=callbacks,
            verbose=2 if self.verbose else 0,
        )
        self.head_ = head
        self.history_: dict[str, list[float]] = {
            key: [float(v) for v in values] for key, values in history.history.items()
        }
        self.n_classes_ = classes
        self.feature_dim_ = int(x.shape[1])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "head_"):
            raise NotFittedError(
                "This HeadTrainer is not fitted yet. Call fit(features, labels) first."
            )

    def predict_proba(
        self, features: npt.ArrayLike, *, batch_size: int = 1024
    ) -> npt.NDArray[np.float32]:
        """Class probabilities ``[n, n_classes]`` for features ``[n, d]``."""
        self._check_fitted()
        x = _real_array(features, "HeadTrainer.predict_proba", InvalidParameterError)
        if x.ndim != 2 or x.shape[1] != self.feature_dim_:
            raise InvalidParameterError(
                f"HeadTrainer.predict_proba needs features shaped [n, {self.feature_dim_}]; "
                f"got {x.shape}."
            )
        if not _all_finite(x):
            raise InvalidParameterError(
                "HeadTrainer.predict_proba got features holding NaN or infinite values."
            )
        if not len(x):
            return np.zeros((0, self.n_classes_), np.float32)
        # Eager calls in fixed-size chunks: Keras' predict() retraces for every new input size.
        chunks = []
        for start in range(0, len(x), batch_size):
            chunk = np.asarray(x[start : start + batch_size])
            chunks.append(self.head_(chunk, training=False).numpy())
            release_mapped_pages(x)
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def combine(self, backbone: Backbone) -> Any:
        """One ``tf_keras`` model: preprocessed images in, class probabilities out."""
        import tf_keras

        self._check_fitted()
        if backbone.output_dim != self.feature_dim_:
            raise InvalidParameterError(
                f"The backbone {backbone.spec.name!r} outputs {backbone.output_dim} features; "
                f"the head was trained on {self.feature_dim_}."
            )
        height, width = backbone.spec.input_size
        inputs = tf_keras.Input((height, width, 3), name="images")
        outputs = self.head_(backbone.layer(inputs))
        return tf_keras.Model(inputs, outputs, name="classifier")


def _class_weights(
    class_weight: ClassWeight, labels: npt.NDArray[np.int64], n_classes: int
) -> dict[int, float] | None:
    """The weight of every class, as Keras needs it (one entry per class, from 0)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        return balanced_class_weights(labels, n_classes)
    weights = {c: 1.0 for c in range(n_classes)}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise InvalidParameterError(
                f"The 'class_weight' parameter of {_OWNER} maps class indexes to weights; "
                f"got the key {key!r}. Use int class indexes, not names."
            )
        if not 0 <= key < n_classes:
            raise InvalidParameterError(
                f"The 'class_weight' parameter of {_OWNER} has the key {key!r}, but there are "
                f"{n_classes} classes (indexes 0 to {n_classes - 1})."
            )
        number = float(value) if isinstance(value, (int, float, np.number)) else math.nan
        if isinstance(value, bool) or not math.isfinite(number) or number < 0:
            raise InvalidParameterError(
                f"The 'class_weight' parameter of {_OWNER} must map classes to finite weights "
                f">= 0. Got {value!r} for class {key!r}."
            )
        weights[int(key)] = number
    return weights


def _check_xy(
    features: npt.ArrayLike, labels: npt.ArrayLike, feature_name: str, label_name: str
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    x = _real_array(features, f"HeadTrainer.fit's {feature_name}", DatasetError)
    y = np.asarray(labels)
    if x.ndim != 2 or not len(x):
        raise DatasetError(
            f"The {feature_name} must be a non-empty [n, d] array; got shape {x.shape}."
        )
    if y.shape != (len(x),):
        raise DatasetError(
            f"The {label_name} must be a [n] array matching {len(x)} {feature_name}; "
            f"got shape {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise DatasetError(
            f"The {label_name} must be non-negative integer class indexes; got {y.dtype}."
        )
    if not _all_finite(x):
        raise DatasetError(f"The {feature_name} hold NaN or infinite values.")
    return x, y.astype(np.int64)


def _all_finite(x: npt.NDArray[np.float32]) -> bool:
    """Whether ``x`` holds no NaN or infinity, read a chunk at a time (a map stays on disk)."""
    rows = max(1, _STREAM_CHUNK_BYTES // max(1, x.shape[1] * 4))
    for start in range(0, len(x), rows):
        finite = bool(np.all(np.isfinite(x[start : start + rows])))
        release_mapped_pages(x)
        if not finite:
            return False
    return True


def _real_array(
    values: npt.ArrayLike, where: str, error: type[InvalidParameterError | DatasetError]
) -> npt.NDArray[np.float32]:
    """``values`` as float32, refusing what a cast would garble (complex, strings, objects).

    A float32 memory map is returned as it is: ``np.asarray`` would lose the map
    (and with it the pages' release), ``astype`` would copy it into memory.
    """
    if _is_float32_memmap(values):
        return values  # type: ignore[return-value]
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        # astype would drop imaginary parts, parse strings and call float() on objects.
        raise error(
            f"{where} must be real numbers (float or int); got an array of dtype {array.dtype}."
        )
    return array.astype(np.float32, copy=False)


def _is_float32_memmap(value: object) -> bool:
    return isinstance(value, np.memmap) and value.dtype == np.float32


def release_mapped_pages(array: object) -> None:
    """Drops the pages of ``array``'s memory map from this process's resident set.

    Reading a memory-mapped file maps each page it touches into the process,
    and the pages stay there (counted in its RSS) until the map is closed,
    so one pass over features larger than memory would end with all of them
    resident. The data is not lost: the kernel's page cache keeps the pages
    (written ones too: the map is shared with the file), and the next read
    maps them again. Anything that is not an ``np.memmap`` is left alone.
    """
    mapping = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    if isinstance(mapping, mmap.mmap) and not mapping.closed and hasattr(mapping, "madvise"):
        mapping.madvise(mmap.MADV_DONTNEED)


def _batches(
    x: npt.NDArray[np.float32],
    targets: npt.NDArray[np.float32],
    *,
    batch_size: int,
    seed: int,
    shuffle: bool,
) -> Any:
    """A tf.data pipeline of (features, one-hot) batches.

    In-memory features are sliced by tf.data; a memory-mapped array is read
    batch by batch from disk in a fresh seeded order each epoch, so features
    larger than memory train with bounded memory.
    """
    import tensorflow as tf

    if not _is_float32_memmap(x):
        data = tf.data.Dataset.from_tensor_slices((x, targets))
        if shuffle:
            data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return data.batch(batch_size)
    epoch = [0]
    # Pages read are dropped from the resident set every so many batches, so memory stays
    # flat however large the file (the page cache still holds them for the next epoch).
    # Each row read at random maps up to 64 KiB around it (Linux's fault-around), not
    # just its own bytes.
    mapped_per_row = max(x.shape[1] * 4, _FAULT_AROUND_BYTES)
    release_every = max(1, _STREAM_CHUNK_BYTES // (batch_size * mapped_per_row))

    def generate() -> Any:
        order = np.arange(len(x))
        if shuffle:
            np.random.default_rng([seed, epoch[0]]).shuffle(order)
        epoch[0] += 1
        for number, start in enumerate(range(0, len(order), batch_size), start=1):
            # Sorted reads within a batch keep the disk access mostly sequential.
            chosen = np.sort(order[start : start + batch_size])
            batch = np.asarray(x[chosen])
            if number % release_every == 0:
                release_mapped_pages(x)
            yield batch, targets[chosen]
        release_mapped_pages(x)

    signature = (
        tf.TensorSpec((None, x.shape[1]), tf.float32),
        tf.TensorSpec((None, targets.shape[1]), tf.float32),
    )
    batches = -(-len(x) // batch_size)
    # A known length: Keras needs it to run several steps per call.
    return tf.data.Dataset.from_generator(generate, output_signature=signature).apply(
        tf.data.experimental.assert_cardinality(batches)
    )
