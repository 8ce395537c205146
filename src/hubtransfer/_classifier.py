"""The :class:`TransferClassifier` facade: folder in, classifier for your classes out."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ._backbone import Backbone, load_backbone, resolve_spec
from ._cache import build_atomically, cache_dir, file_sha256
from ._calibration import (
    CalibrationReport,
    apply_temperature,
    calibration_report,
    with_unknown,
)
from ._catalog import DEFAULT_BACKBONE
from ._data import (
    DataSplit,
    ImageCollection,
    from_paths,
    linked_class_folders,
    scan_image_folder,
    stratified_split,
)
from ._doctor import (
    BadImage,
    apply_bad_images,
    find_bad_images,
    screen_collection,
)
from ._evaluation import EvaluationReport, evaluation_report
from ._exceptions import (
    ConcurrentFitError,
    DatasetError,
    InvalidParameterError,
    ModelFormatError,
    NotFittedError,
)
from ._export import ExportFormat, Quantization, export_model, temperature_scaled_head
from ._features import FeatureStore, extract_features, extract_into_store
from ._finetune import Augmentation, FineTuneResult, fine_tune, save_backbone
from ._folders import MODEL_FOLDER, Protected, WriteRule, write_folder
from ._handles import extract_archive_safely, resolve_handle
from ._head import HeadTrainer, release_mapped_pages
from ._labels import LabelMap
from ._model_files import read_description, read_head_weights, validate_description
from ._precision import (
    CHECK_IMAGES,
    Precision,
    PrecisionCheck,
    ResolvedPrecision,
    check_agreement,
    check_precision_parameter,
    reduced_precision,
    resolve_precision,
)
from ._preprocessing import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, Preprocessor
from ._runtime import CONVERTED_RUNTIMES, RUNTIME_CHOICES, RuntimeChoice
from ._spec import BackboneSpec
from ._validation import check_bool, check_float, check_images_argument, check_int
from ._version import __version__

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["MODEL_FORMAT", "MODEL_FORMAT_VERSION", "TransferClassifier"]

MODEL_FORMAT: Final = "hubtransfer.model"
MODEL_FORMAT_VERSION: Final = 1
_METADATA: Final = "hubtransfer.json"
_HEAD_WEIGHTS: Final = "head.npz"
_BACKBONE_DIR: Final = "backbone"
_SPLIT: Final = "split.json"
_OWNER: Final = "TransferClassifier"

_FITTED_STATE: Final = (
    "trainer_",
    "backbone_",
    "preprocessor_",
    "classes_",
    "label_map_",
    "history_",
    "split_",
    "n_features_in_",
    "validation_report_",
    "skipped_images_",
    "calibration_report_",
    "temperature_",
    "_store",
    "_keras_model",
    "fine_tune_result_",
    "_files",
    "precision_",
    "precision_check_",
    "_precision_sample",
    "_label_values",
)

IN_MEMORY_FEATURE_BYTES = 64 << 20
"""Above this many bytes of features, fit keeps them in a memory-mapped file.

The head then streams them from the file batch by batch, so the memory of a
fit stays flat as the data set grows (about 13,000 images of 1,280
features fit under the limit; the file is read from the page cache, at
no measurable cost to the head's speed).
"""

_HEAD_PARAMS: Final = (
    "epochs",
    "batch_size",
    "learning_rate",
    "dropout",
    "hidden_units",
    "label_smoothing",
    "l2",
    "class_weight",
    "early_stopping",
    "patience",
    "seed",
)

DataInput = (
    str
    | os.PathLike[str]
    | ImageCollection
    | DataSplit
    | Sequence[str | os.PathLike[str]]
    | npt.NDArray[Any]
    | Any
)


def _is_dataset(value: object) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _images_in(folder: Path) -> list[Path]:
    # Every entry with an image's name but a folder: a FIFO or a device named x.png is
    # refused by name when it is read, not skipped in silence.
    return sorted(
        p
        for p in folder.rglob("*")
        if not p.is_dir()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


class TransferClassifier:
    """Transfer learning in one object: frozen backbone, trained Dense head.

    Follows scikit-learn's estimator contract: ``__init__`` only stores its
    arguments, :meth:`fit` returns ``self``, learned state ends in ``_``,
    :meth:`predict_proba` columns follow ``classes_``, :meth:`score` is
    accuracy, and :meth:`get_params` / :meth:`set_params` work.

    Training extracts the backbone's features once per image (cached on
    disk, keyed by the backbone's weights, the preprocessing and each file's
    content), then fits the head on them for every epoch: twenty epochs cost
    about one backbone pass.

    Args:
        backbone: Backbone name, handle or spec (default: the embedded,
            offline EfficientNet-Lite0 feature vector).
        epochs: Training epochs of the head.
        batch_size: Features per gradient step.
        learning_rate: Adam's learning rate.
        dropout: Dropout before the output layer.
        hidden_units: Width of an optional hidden layer.
        label_smoothing: Label smoothing of the loss.
        l2: L2 penalty on the head's kernels.
        class_weight: ``"balanced"``, ``{class index: weight}`` or None.
        early_stopping: Stop on the validation loss, restoring the best weights.
        patience: Epochs without improvement before stopping.
        validation_split: Fraction of a folder held out (stratified, seeded)
            for validation; 0 for none.
        seed: Seed for the split, initialisation and shuffling.
        cache_features: Whether to keep features in the on-disk cache.
        extraction_batch_size: Images per backbone pass.
        runtime: How the frozen backbone runs during feature extraction:
            "auto" (OpenVINO when the optional ``openvino`` extra is
            installed, else TensorFlow Lite with XNNPACK, each only when its
            features match TensorFlow's within 1e-4 + 1e-3*|f|; else
            TensorFlow with a warning), "openvino" or "tflite" (or an
            error), "tensorflow". Features agree to about 1e-5, so the
            feature cache is shared.
        fine_tune: After the head converges, also train the top ``fine_tune``
            layers of the backbone (or ``"all"``) with the head, at
            ``fine_tune_learning_rate``, with BatchNorm kept in inference
            mode. None (the default) keeps the backbone frozen. Needs image
            files; costs a backbone forward and backward pass per image per
            epoch.
        fine_tune_epochs: Epochs of fine-tuning.
        fine_tune_learning_rate: Adam's learning rate while fine-tuning.
        augmentation: Random flips, rotations, zooms, brightness and contrast
            while fine-tuning (``True`` for the defaults, or an
            :class:`Augmentation`). It cannot apply to cached features, so
            it needs ``fine_tune``.
        precision: Arithmetic of the backbone, in feature extraction and
            fine-tuning: "float32" (the default); "mixed_float16" (float16 on an
            NVIDIA GPU of compute capability 7.0 or newer, with loss scaling
            while fine-tuning); "mixed_bfloat16" (bfloat16 on the CPU through
            oneDNN: faster only on CPUs with avx512_bf16 or amx_bf16, slower
            elsewhere, with a warning); or "auto" (the reduced precision this
            machine runs faster, else float32: ``precision_`` says which).
            Unsupported hardware is an error at :meth:`fit`. Reduced precision
            runs on TensorFlow (not TensorFlow Lite), keeps its own feature
            cache, leaves the head in float32, and is checked against float32
            at fit (``precision_check_``; a warning below
            :data:`hubtransfer.MIN_PRECISION_AGREEMENT` top-1 agreement).
            Exports stay float32.
        strategy: A ``tf.distribute.Strategy`` the head trains under
            (``batch_size`` is then the global batch) and image files are
            extracted under: with ``MultiWorkerMirroredStrategy`` each worker
            extracts its share into the feature cache, which must then be on
            a filesystem all workers see (``HUBTRANSFER_CACHE_DIR``). None
            for the default device. It is not saved with the model.
        on_bad_image: What :meth:`fit` does about image files that cannot
            be decoded (empty, not images, truncated, over
            ``max_image_pixels``). Every file is decoded once, before the head
            trains, by the pipeline that computes its features (files whose
            features are cached are only hashed): ``"raise"`` then raises one
            :class:`ImageDecodeError` listing them all (the good files'
            features stay cached, so the fit after the fix is quick);
            ``"skip"`` trains without them and lists them in
            ``skipped_images_``.
        max_image_pixels: Images with more pixels are refused before they
            are decoded (a decompression-bomb guard); ``None`` for no limit.
        verbose: 0 silent; 1 progress and per-epoch metrics.

    Example:
        >>> import hubtransfer
        >>> model = hubtransfer.TransferClassifier(epochs=10, verbose=0)
        >>> model.fit("examples/data/fashion-mnist-sample")  # doctest: +SKIP
        >>> model.predict(["shoe.png"])  # doctest: +SKIP
        array(['sneaker'], dtype='<U11')
    """

    def __init__(
        self,
        backbone: str | BackboneSpec = DEFAULT_BACKBONE,
        *,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        dropout: float = 0.0,
        hidden_units: int | None = None,
        label_smoothing: float = 0.0,
        l2: float = 0.0,
        class_weight: str | Mapping[int, float] | None = None,
        early_stopping: bool = True,
        patience: int = 5,
        validation_split: float = 0.2,
        seed: int = 0,
        cache_features: bool = True,
        extraction_batch_size: int = 64,
        runtime: RuntimeChoice = "auto",
        fine_tune: int | Literal["all"] | None = None,
        fine_tune_epochs: int = 3,
        fine_tune_learning_rate: float = 1e-5,
        augmentation: Augmentation | bool = False,
        precision: Precision = "float32",
        strategy: Any = None,
        on_bad_image: Literal["raise", "skip"] = "raise",
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
        verbose: int = 1,
    ) -> None:
        self.backbone = backbone
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
        self.validation_split = validation_split
        self.seed = seed
        self.cache_features = cache_features
        self.extraction_batch_size = extraction_batch_size
        self.runtime = runtime
        self.fine_tune = fine_tune
        self.fine_tune_epochs = fine_tune_epochs
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.augmentation = augmentation
        self.precision = precision
        self.strategy = strategy
        self.on_bad_image = on_bad_image
        self.max_image_pixels = max_image_pixels
        self.verbose = verbose

    # scikit-learn's parameter protocol -----------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        import inspect

        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Returns the constructor parameters, as scikit-learn does."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> TransferClassifier:
        """Sets constructor parameters; returns ``self``.

        Raises:
            InvalidParameterError: For a name that is not a parameter.
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InvalidParameterError(
                    f"{name!r} is not a parameter of TransferClassifier. Valid parameters: "
                    f"{', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = TransferClassifier.__init__.__kwdefaults__ or {}
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if name == "backbone" or defaults.get(name, object()) != value
        ]
        return f"TransferClassifier({', '.join(changed)})"

    def _head_trainer(self) -> HeadTrainer:
        return HeadTrainer(
            **{name: getattr(self, name) for name in _HEAD_PARAMS},
            verbose=self.verbose,
            strategy=self.strategy,
        )

    def _validate(self) -> None:
        if self.on_bad_image not in ("raise", "skip"):
            raise InvalidParameterError(
                f"The 'on_bad_image' parameter of {_OWNER} must be 'raise' or 'skip'. "
                f"Got {self.on_bad_image!r} instead."
            )
        pixels = self.max_image_pixels
        if pixels is not None and (
            isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1
        ):
            raise InvalidParameterError(
                f"The 'max_image_pixels' parameter of {_OWNER} must be a positive int or None. "
                f"Got {pixels!r} instead."
            )
        if not isinstance(self.backbone, (str, BackboneSpec)):
            raise InvalidParameterError(
                f"The 'backbone' parameter of {_OWNER} must be a name, handle or BackboneSpec. "
                f"Got {self.backbone!r} instead."
            )
        self._head_trainer().validate(owner=_OWNER)
        check_float(self.validation_split, "validation_split", low=0.0, high=1.0, owner=_OWNER)
        if not isinstance(self.cache_features, bool):
            raise InvalidParameterError(
                f"The 'cache_features' parameter of {_OWNER} must be a bool. "
                f"Got {self.cache_features!r} instead."
            )
        tune = self.fine_tune
        if (
            tune is not None
            and tune != "all"
            and (isinstance(tune, bool) or not isinstance(tune, int) or tune < 1)
        ):
            raise InvalidParameterError(
                f"The 'fine_tune' parameter of {_OWNER} must be None, a positive int (the "
                f"number of top layers) or 'all'. Got {tune!r} instead."
            )
        check_int(self.fine_tune_epochs, "fine_tune_epochs", minimum=1, owner=_OWNER)
        check_float(
            self.fine_tune_learning_rate,
            "fine_tune_learning_rate",
            low=0.0,
            high=1.0,
            open_low=True,
            owner=_OWNER,
        )
        if not isinstance(self.augmentation, (bool, Augmentation)):
            raise InvalidParameterError(
                f"The 'augmentation' parameter of {_OWNER} must be a bool or an Augmentation. "
                f"Got {self.augmentation!r} instead."
            )
        if self.augmentation and tune is None:
            raise InvalidParameterError(
                f"The 'augmentation' parameter of {_OWNER} needs 'fine_tune': augmented "
                "images change every epoch, so their features cannot be cached for a frozen "
                "backbone. Set fine_tune=N (or 'all'), or leave augmentation off."
            )
        if self.runtime not in RUNTIME_CHOICES:
            raise InvalidParameterError(
                f"The 'runtime' parameter of {_OWNER} must be one of "
                f"{', '.join(map(repr, RUNTIME_CHOICES))}. Got {self.runtime!r} instead."
            )
        check_int(self.extraction_batch_size, "extraction_batch_size", minimum=1, owner=_OWNER)
        check_precision_parameter(self.precision, owner=_OWNER)
        if self.precision not in ("float32", "auto") and self.runtime in CONVERTED_RUNTIMES:
            raise InvalidParameterError(
                f"The 'precision' parameter of {_OWNER} is {self.precision!r}, which runs the "
                f"backbone on TensorFlow, but 'runtime' is {self.runtime!r} (float32 only). Use "
                "runtime='auto' or 'tensorflow', or precision='float32'."
            )

    # Fitting ------------------------------------------------------------------------------

    def fit(
        self,
        data: DataInput,
        y: Sequence[str] | Sequence[int] | npt.NDArray[Any] | None = None,
        *,
        classes: Sequence[str] | None = None,
        validation_data: tuple[Any, Any] | DataInput | None = None,
    ) -> TransferClassifier:
        """Trains the head on your classes.

        Args:
            data: One of: a folder with one sub-folder per class; an
                :class:`ImageCollection`; a :class:`DataSplit` (its train and
                validation parts are used); a sequence of image paths with
                ``y``; an image array ``[n, h, w, c]`` with ``y``; a
                ``tf.data.Dataset`` of ``(image, label)`` pairs (batched or not).
            y: Labels (class names or indexes) for paths and arrays.
            classes: Class names for integer labels (default ``"0"``, ``"1"``...).
            validation_data: Validation data in any form ``data`` takes (a
                pair ``(x, y)`` for paths and arrays). Overrides
                ``validation_split``.

        Returns:
            ``self``.

        Raises:
            InvalidParameterError: For a bad parameter, naming it.
            DatasetError: For unusable data (empty, one class, bad labels), or
                with ``on_bad_image="skip"`` a class whose files are all bad.
            ImageDecodeError: With ``on_bad_image="raise"``, listing every
                image file that cannot be decoded, before any training.
            ConcurrentFitError: If another thread is fitting this object.
        """
        with _fitting_alone(self):
            return self._fit(data, y, classes=classes, validation_data=validation_data)

    def _fit(
        self, data: DataInput, y: Any, *, classes: Sequence[str] | None, validation_data: Any
    ) -> TransferClassifier:
        self._validate()
        previous = self.__dict__.get("backbone_")
        # A refit that fails must not leave the old head beside a new backbone.
        for name in _FITTED_STATE:
            self.__dict__.pop(name, None)
        self.precision_: ResolvedPrecision = resolve_precision(self.precision, owner=_OWNER)
        if self.precision_ != "float32" and self.runtime in CONVERTED_RUNTIMES:
            raise InvalidParameterError(
                f"The 'precision' parameter of {_OWNER} resolved to {self.precision_!r}, which "
                f"runs the backbone on TensorFlow, but 'runtime' is {self.runtime!r} (float32 "
                "only). "
                "Use runtime='auto' or 'tensorflow', or precision='float32'."
            )
        self.precision_check_: PrecisionCheck | None = None
        self._precision_sample: npt.NDArray[np.float32] | Sequence[Path] | None = None
        backbone = self._frozen_backbone(previous)
        preprocessor = Preprocessor.from_spec(backbone.spec, max_pixels=self.max_image_pixels)
        store = self._feature_store(backbone)
        self.backbone_ = backbone
        self.preprocessor_ = preprocessor
        self._store = store
        self.skipped_images_: tuple[BadImage, ...] = ()
        self._files: dict[str, tuple[Sequence[Path], npt.NDArray[np.int64]]] = {}
        train, validation, class_names, split = self._training_features(
            data, y, classes=classes, validation_data=validation_data
        )
        train_x, train_y = train
        if len(class_names) < 2:
            raise DatasetError(
                f"Training needs at least 2 classes; the data has {len(class_names)} "
                f"({list(class_names)!r}). Add a sub-folder of images per class."
            )
        trainer = self._head_trainer()
        trainer.fit(train_x, train_y, n_classes=len(class_names), validation_data=validation)
        self.trainer_ = trainer
        values = self.__dict__.get("_label_values")
        self.classes_ = np.asarray(class_names) if values is None else values
        self.label_map_ = LabelMap(list(class_names))
        self.history_ = trainer.history_
        self.split_ = split
        self.n_features_in_ = int(train_x.shape[1])
        self._keras_model = None
        self.fine_tune_result_: FineTuneResult | None = None
        if self.fine_tune is not None:
            validation = self._fine_tune(validation)
        if self.precision_ != "float32":
            self._check_precision()
        del self._precision_sample
        self.calibration_report_: CalibrationReport | None = None
        self.temperature_: float | None = None
        if validation is not None:
            probabilities = trainer.predict_proba(validation[0])
            self.validation_report_: EvaluationReport | None = evaluation_report(
                validation[1], probabilities, class_names
            )
            # Temperature scaling on the held-out split (Guo et al. 2017): the answers stay,
            # the probabilities become trustworthy enough for predict(min_confidence=...).
            self.calibration_report_ = calibration_report(probabilities, validation[1])
            self.temperature_ = self.calibration_report_.temperature
            self._log(f"Calibration: {self.calibration_report_.format()}")
        else:
            self.validation_report_ = None
        return self

    def _fine_tune(
        self, validation: tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
        """Fine-tunes the backbone's top layers; returns the new validation features."""
        if "train" not in self._files:
            raise InvalidParameterError(
                "Fine-tuning reads the training images again for every epoch, so it needs "
                "image files: fit on a folder, an ImageCollection, a DataSplit or image paths."
            )
        augmentation: Augmentation | None
        if isinstance(self.augmentation, Augmentation):
            augmentation = self.augmentation
        else:
            augmentation = Augmentation() if self.augmentation else None
        assert self.fine_tune is not None  # checked by the caller
        paths, labels = self._files["train"]
        validation_files = self._files.get("validation")
        trainable = load_backbone(self.backbone_.spec, trainable=True)
        self.fine_tune_result_ = fine_tune(
            trainable,
            self.trainer_.head_,
            self.preprocessor_,
            list(paths),
            labels.tolist(),
            layers=self.fine_tune,
            epochs=self.fine_tune_epochs,
            learning_rate=self.fine_tune_learning_rate,
            batch_size=self.batch_size,
            augmentation=augmentation,
            validation=None
            if validation_files is None
            else (list(validation_files[0]), validation_files[1].tolist()),
            precision=self.precision_,
            seed=self.seed,
            verbose=self.verbose,
        )
        self.history_ = {
            **self.trainer_.history_,
            **{f"fine_tune_{k}": v for k, v in self.fine_tune_result_.history.items()},
        }
        # The fine-tuned weights become the model's backbone: saved as a SavedModel in the
        # cache, so its content hash (and with it the feature-cache key) is new.
        spec = dataclasses.replace(
            self.backbone_.spec,
            name=f"{self.backbone_.spec.name}_finetuned",
            description=f"{self.backbone_.spec.name} fine-tuned by hubtransfer",
            companion=None,
        )
        entry = cache_dir() / "finetuned" / uuid.uuid4().hex
        build_atomically(entry, lambda folder: save_backbone(trainable, folder))
        self.backbone_ = Backbone(spec, path=entry)
        self._store = self._feature_store(self.backbone_)
        if validation_files is None:
            return validation
        return self._features_of_files(validation_files[0]), validation_files[1]

    def _frozen_backbone(self, previous: Backbone | None) -> Backbone:
        """The frozen backbone to fit with: the previous fit's if unchanged, else a new one.

        Its SavedModel is loaded only when something runs it (an image whose
        features are not cached, with no checked TFLite copy at hand): a
        re-fit on cached features does no backbone work at all.
        """
        spec = resolve_spec(self.backbone)
        path = resolve_handle(spec.handle)
        signature = _folder_signature(path)
        unchanged = self.__dict__.get("_backbone_signature") == signature
        self._backbone_signature = signature
        if (
            unchanged
            and previous is not None
            and not previous.trainable
            and previous.spec == spec
            and previous.path == path
        ):
            return previous
        return Backbone._deferred(spec, path=path)

    def _feature_store(self, backbone: Backbone) -> FeatureStore | None:
        if not self.cache_features:
            return None
        # Reduced-precision features differ from float32 ones by about 1e-2 (relative):
        # they get their own cache, so neither precision ever reads the other's.
        root = None if self.precision_ == "float32" else cache_dir() / f"features-{self.precision_}"
        return FeatureStore.for_backbone(backbone, backbone.spec.preprocessing, root=root)

    def _runtime_choice(self) -> RuntimeChoice:
        return self.runtime if self.precision_ == "float32" else "tensorflow"

    def _check_precision(self) -> None:
        """Compares the fitted model in ``precision_`` with float32 on a sample (fit's end)."""
        sample = self._precision_sample
        if sample is None:
            files = self._files.get("validation") or self._files.get("train")
            sample = None if files is None else list(files[0])
        if sample is None or not len(sample):
            self._log("Precision check skipped: fit kept no images to check on.")
            return
        rng = np.random.default_rng(self.seed)
        picked = np.sort(rng.permutation(len(sample))[:CHECK_IMAGES])
        if isinstance(sample, np.ndarray):
            pixels = sample[picked]
        else:
            pixels = self.preprocessor_.batch([sample[i] for i in picked])
        self.precision_check_ = check_agreement(
            lambda batch: self.backbone_.predict(batch, batch_size=self.extraction_batch_size),
            pixels,
            self.trainer_.predict_proba,
            precision=self.precision_,
        )
        self._log(f"Precision check: {self.precision_check_.format()}")

    def _keep_precision_sample(self, pixels: Any) -> None:
        # Only while fit runs (the attribute is deleted after the check), and only the first
        # preprocessed images of arrays or datasets: files are re-read from their paths.
        if self.__dict__.get("_precision_sample", False) is None and self.precision_ != "float32":
            self._precision_sample = np.asarray(pixels[:CHECK_IMAGES], np.float32)

    def _log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr)

    def _screened(self, collection: ImageCollection) -> ImageCollection:
        """Finds every file training cannot use, before training; raises, or drops them.

        With the feature cache on, this is the extraction itself: every file
        is decoded once, by the pipeline that computes its features, and the
        ones that fail are examined afterwards to say why. Without it, or
        under a strategy (whose workers each extract their own share later),
        every file is decoded by a separate check first.
        """
        if self._store is None or self.strategy is not None:
            kept, bad = screen_collection(
                collection,
                on_bad_image=self.on_bad_image,
                max_pixels=self.max_image_pixels,
            )
        else:
            with reduced_precision(self.precision_):
                failed = extract_into_store(
                    self.backbone_,
                    self.preprocessor_,
                    collection.paths,
                    store=self._store,
                    batch_size=self.extraction_batch_size,
                    verbose=bool(self.verbose),
                    runtime=self._runtime_choice(),
                )
            failed_paths = [collection.paths[i] for i in failed]
            # (Setting up the check's decoders costs ~0.2 s: not for nothing.)
            found = (
                find_bad_images(failed_paths, max_pixels=self.max_image_pixels)
                if failed_paths
                else []
            )
            named = {item.path for item in found}
            # The decoder of the check and the pipeline's agree; if they ever do not,
            # the pipeline's verdict stands.
            found += [
                BadImage(path=path, kind="damaged", reason="cannot be decoded by TensorFlow")
                for path in failed_paths
                if path not in named
            ]
            order = {path: i for i, path in enumerate(failed_paths)}
            found.sort(key=lambda item: order.get(item.path, len(order)))
            kept, bad = apply_bad_images(collection, found, on_bad_image=self.on_bad_image)
        if bad:
            self.skipped_images_ = (*self.skipped_images_, *bad)
            self._log(
                f"Skipped {len(bad)} of {len(collection)} image files that cannot be decoded "
                "(on_bad_image='skip'):\n" + "\n".join(f"  {item}" for item in bad)
            )
        return kept

    def _features_of_files(self, paths: Sequence[Path]) -> npt.NDArray[np.float32]:
        def extract(part: Sequence[Path]) -> npt.NDArray[np.float32]:
            # A file that passes the header check but not the decoder (fit decodes every
            # file first; predict and evaluate do not) raises an error naming every bad file.
            with reduced_precision(self.precision_):
                return extract_features(
                    self.backbone_,
                    self.preprocessor_,
                    part,
                    store=self._store,
                    batch_size=self.extraction_batch_size,
                    verbose=bool(self.verbose),
                    runtime=self._runtime_choice(),
                    strategy=self.strategy,
                )

        width = self.backbone_.output_dim
        if len(paths) * width * 4 <= IN_MEMORY_FEATURE_BYTES:
            return extract(paths)
        # Larger than the budget: fill a memory-mapped file chunk by chunk; the head
        # trainer then streams it from disk batch by batch.
        folder = cache_dir() / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"features-{uuid.uuid4().hex}.npy"
        mapped = np.lib.format.open_memmap(
            file, mode="w+", dtype=np.float32, shape=(len(paths), width)
        )
        chunk = max(1, IN_MEMORY_FEATURE_BYTES // (width * 4))
        for start in range(0, len(paths), chunk):
            mapped[start : start + chunk] = extract(paths[start : start + chunk])
            # Written pages go to the file; none of them need stay in this process.
            mapped.flush()
            release_mapped_pages(mapped)
        del mapped
        reader: npt.NDArray[np.float32] = np.load(file, mmap_mode="r")
        # Unlinked at once: the mapping keeps the data readable until it is released.
        file.unlink()
        return reader

    def _training_features(
        self,
        data: DataInput,
        y: Any,
        *,
        classes: Sequence[str] | None,
        validation_data: Any,
    ) -> tuple[
        tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]],
        tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None,
        tuple[str, ...],
        DataSplit | None,
    ]:
        if isinstance(data, (str, os.PathLike)) and y is None:
            data = scan_image_folder(data, classes=classes)
            linked = linked_class_folders(data)
            if linked:
                shown = "; ".join(f"{a!r} and {b!r}" for a, b in linked[:5])
                raise DatasetError(
                    f"In {str(data.root)!r} the class folders {shown} share their files on "
                    "disk (one is a symbolic link to the other, or into it): those images "
                    "would be labelled twice, on both sides of the validation split. Remove "
                    "the link, or copy the right images."
                )
            skipped = len(data.skipped)
            self._log(
                f"Found {len(data)} images in {len(data.classes)} classes in {str(data.root)!r}"
                + (f" ({skipped} files skipped: hidden or not images)." if skipped else ".")
            )
        if isinstance(data, DataSplit):
            data = dataclasses.replace(
                data, train=self._screened(data.train), validation=self._screened(data.validation)
            )
        elif isinstance(data, ImageCollection) and y is None:
            # Before the split, so that it is the split `hubtransfer check` reports.
            data = self._screened(data)
        if isinstance(data, ImageCollection) and y is None:
            split: DataSplit | None = None
            if validation_data is None and self.validation_split > 0:
                split = stratified_split(data, validation=self.validation_split, seed=self.seed)
                data = split
            else:
                train_collection = data
        from_split = False
        if isinstance(data, DataSplit):
            split = data
            train_collection = data.train
            if validation_data is None and len(data.validation):
                validation_data = data.validation
                from_split = True  # screened above, with the rest of the split
        if isinstance(data, (ImageCollection, DataSplit)):
            train = (
                self._features_of_files(train_collection.paths),
                np.asarray(train_collection.labels, np.int64),
            )
            self._files["train"] = (train_collection.paths, train[1])
            class_names = train_collection.classes
            validation = self._validation_features(
                validation_data, class_names, screened=from_split
            )
            self._log(
                f"Split (seed {self.seed}): {len(train[1])} train, "
                f"{0 if validation is None else len(validation[1])} validation images."
            )
            return train, validation, class_names, split
        features, labels, class_names = self._features_and_labels(data, y, classes=classes)
        if validation_data is None and self.validation_split > 0:
            indexes = _stratified_indexes(labels, self.validation_split, self.seed)
            train = (features[indexes[0]], labels[indexes[0]])
            validation = (features[indexes[1]], labels[indexes[1]]) if len(indexes[1]) else None
            return train, validation, class_names, None
        validation = self._validation_features(validation_data, class_names)
        return (features, labels), validation, class_names, None

    def _validation_features(
        self, validation_data: Any, class_names: tuple[str, ...], *, screened: bool = False
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | None:
        if validation_data is None:
            return None
        if isinstance(validation_data, (str, os.PathLike)):
            validation_data = scan_image_folder(validation_data, classes=class_names)
        if isinstance(validation_data, ImageCollection):
            if not screened:
                validation_data = self._screened(validation_data)
            labels = _relabel(validation_data, class_names)
            self._files["validation"] = (validation_data.paths, labels)
            return self._features_of_files(validation_data.paths), labels
        if isinstance(validation_data, tuple) and len(validation_data) == 2:
            features, labels, _ = self._features_and_labels(
                validation_data[0], validation_data[1], classes=class_names
            )
            return features, labels
        features, labels, _ = self._features_and_labels(validation_data, None, classes=class_names)
        return features, labels

    def _features_and_labels(
        self, data: Any, y: Any, *, classes: Sequence[str] | None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], tuple[str, ...]]:
        if _is_dataset(data):
            if y is not None:
                raise InvalidParameterError(
                    "Pass labels inside the tf.data.Dataset as (image, label) pairs, not as y."
                )
            features, labels = self._dataset_features(data)
            encoded, values = self._integer_labels(labels, classes)
            names: Sequence[str]
            if values is not None:
                names = values
            else:
                names = tuple(classes) if classes is not None else _default_names(labels)
            return features, np.asarray(encoded, np.int64), tuple(names)
        if not isinstance(data, (np.ndarray, str, os.PathLike)) and isinstance(data, Iterable):
            # Lists of arrays, generators, (image, label) pairs: materialised once.
            items = list(data)
            if y is None and items and all(isinstance(i, tuple) and len(i) == 2 for i in items):
                data, y = [image for image, _ in items], [label for _, label in items]
            else:
                data = items
            if data and all(isinstance(i, np.ndarray) for i in data):
                return self._array_features(data, y, classes=classes)
        if y is None:
            raise InvalidParameterError(
                f"fit() got {type(data).__name__} data without labels: pass y, or pass a folder "
                "with one sub-folder per class."
            )
        if not isinstance(y, (np.ndarray, Sequence)):
            y = list(y)
        if isinstance(data, np.ndarray):
            if data.ndim not in (3, 4):
                raise DatasetError(
                    f"Image arrays must be shaped [n, h, w] or [n, h, w, c] with n = {len(y)} "
                    f"labels; got {data.shape}."
                )
            return self._array_features(list(data), y, classes=classes)
        if isinstance(data, (str, os.PathLike)):
            raise InvalidParameterError(
                "A folder is labelled by its sub-folders; do not pass y with a folder."
            )
        encoded, values = self._integer_labels(y, classes)
        collection = from_paths(list(data), encoded, classes=classes if values is None else values)
        collection = self._screened(collection)
        features = self._features_of_files(collection.paths)
        return features, np.asarray(collection.labels, np.int64), collection.classes

    def _array_features(
        self, images: list[Any], y: Any, *, classes: Sequence[str] | None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], tuple[str, ...]]:
        encoded, names = self._integer_labels(y, classes)
        collection = from_paths(
            [f"<array {i}>" for i in range(len(images))],
            encoded,
            classes=classes if names is None else names,
        )
        pixels = self.preprocessor_.batch(images)
        self._keep_precision_sample(pixels)
        with reduced_precision(self.precision_):
            features = self.backbone_.predict(pixels, batch_size=self.extraction_batch_size)
        return features, np.asarray(collection.labels, np.int64), collection.classes

    def _integer_labels(
        self, y: Any, classes: Sequence[str] | None
    ) -> tuple[list[Any], list[str] | None]:
        """Integer labels are the classes, as in scikit-learn: ``[5, 6]`` is two classes, 5 and 6.

        Returns the labels to give ``from_paths`` (positions among the sorted
        distinct values) and the class names (the values as strings), or
        ``y`` unchanged and None for names, or for ints that index ``classes=``.
        The first fit's values are kept (``_label_values``) so that validation
        and evaluation labels are read the same way.
        """
        values = np.asarray(y if isinstance(y, (np.ndarray, Sequence)) else list(y))
        known = self.__dict__.get("_label_values")
        if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iu":
            return values.tolist(), None
        if known is None:
            if classes is not None:
                return values.tolist(), None  # indexes into the class names given
            known = np.unique(values)
            self._label_values = known
        positions = np.searchsorted(known, values)
        clipped = np.minimum(positions, len(known) - 1)
        unknown = sorted(set(values[known[clipped] != values].tolist()))
        if unknown:
            raise DatasetError(
                f"The labels {unknown[:10]} are not among the model's classes "
                f"{known.tolist()[:20]}."
            )
        return positions.tolist(), [str(v) for v in known.tolist()]

    def _dataset_features(
        self, dataset: tf.data.Dataset
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        import tensorflow as tf

        spec = dataset.element_spec
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise DatasetError(
                "A tf.data.Dataset for fit() must yield (image, label) pairs; "
                f"its elements are {spec!r}."
            )
        preprocessor = self.preprocessor_
        data = dataset.map(lambda images, labels: (preprocessor(images), labels))
        if spec[0].shape.rank != 4:
            # Preprocessed first, so images of different sizes batch together.
            data = data.batch(self.extraction_batch_size)
        labels: list[npt.NDArray[np.int64]] = []

        def images_only() -> Iterable[Any]:
            for images, batch_labels in data:
                labels.append(np.asarray(batch_labels, np.int64).reshape(-1))
                images = tf.cast(images, tf.float32)
                self._keep_precision_sample(images)
                yield images

        with reduced_precision(self.precision_):
            features = self.backbone_.predict(images_only())
        label_array = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        return features, label_array

    # Prediction ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "trainer_"):
            raise NotFittedError(
                "This TransferClassifier is not fitted yet. Call fit(...) or "
                "TransferClassifier.load(path) first."
            )

    def _features_for_prediction(self, images: Any) -> npt.NDArray[np.float32]:
        if _is_dataset(images):
            spec = images.element_spec
            image_spec = spec[0] if isinstance(spec, tuple) else spec
            preprocessor = self.preprocessor_
            if isinstance(spec, tuple):
                data = images.map(lambda x, *_: preprocessor(x))
            else:
                data = images.map(preprocessor)
            if image_spec.shape.rank != 4:
                # Preprocessed first, so images of different sizes batch together.
                data = data.batch(self.extraction_batch_size)
            return self.backbone_.predict(data)
        if isinstance(images, (str, os.PathLike)):
            path = Path(images)
            paths = _images_in(path) if path.is_dir() else [path]
            if not paths:
                raise DatasetError(f"No images found in the folder {str(path)!r}.")
            return self._features_of_files(paths)
        if isinstance(images, np.ndarray) and images.ndim in (3, 4):
            batch = list(images) if images.ndim == 4 or images.shape[-1] > 4 else [images]
            pixels = self.preprocessor_.batch(batch)
            return self.backbone_.predict(pixels, batch_size=self.extraction_batch_size)
        items = list(images)
        if items and all(isinstance(i, (str, os.PathLike)) for i in items):
            return self._features_of_files([Path(i) for i in items])
        pixels = self.preprocessor_.batch(items)
        return self.backbone_.predict(pixels, batch_size=self.extraction_batch_size)

    def predict_proba(self, images: Any, *, calibrated: bool = True) -> npt.NDArray[np.float32]:
        """Class probabilities, columns in the order of ``classes_``.

        Args:
            images: A folder (its images, recursively), image paths, bytes,
                arrays, an image array ``[n, h, w, c]`` or a
                ``tf.data.Dataset`` of images (or of ``(image, label)``).
            calibrated: Apply ``temperature_`` (fitted on the validation
                split; absent without one). It never changes the most
                likely class.

        Returns:
            ``[n, len(classes_)]`` probabilities; rows sum to 1.
        """
        self._check_fitted()
        check_images_argument(images, "TransferClassifier.predict_proba")
        check_bool(calibrated, "calibrated", "TransferClassifier.predict_proba")
        with reduced_precision(self.precision_):
            features = self._features_for_prediction(images)
        probabilities = self.trainer_.predict_proba(features)
        temperature = self.temperature_ if calibrated else None
        if temperature is None or temperature == 1.0:
            return probabilities
        return apply_temperature(probabilities, temperature).astype(np.float32)

    def predict(
        self,
        images: Any,
        *,
        min_confidence: float | None = None,
        unknown_label: str = "unknown",
    ) -> npt.NDArray[Any]:
        """The most likely class per image (see :meth:`predict_proba`).

        The answers are elements of ``classes_``: class names, or the integer
        labels themselves when the model was fitted on integer labels without
        ``classes=`` (as in scikit-learn, so ``model.predict(X) == y`` compares
        like with like). With ``min_confidence``, the answers are strings.

        Args:
            images: As for :meth:`predict_proba`.
            min_confidence: If given, images whose top (calibrated)
                probability is below it are answered ``unknown_label``:
                a classifier otherwise names one of its classes even for an
                image that shows none of them.
            unknown_label: The answer for those images; not a class name.

        Example:
            >>> model.predict("photos/", min_confidence=0.6)  # doctest: +SKIP
            array(['daisy', 'unknown', 'tulips'], dtype='<U7')
        """
        probabilities = self.predict_proba(images)
        if min_confidence is None:
            return np.asarray(self.classes_[probabilities.argmax(axis=1)])
        return with_unknown(
            probabilities,
            self.classes_,
            min_confidence=min_confidence,
            unknown_label=unknown_label,
        )

    def _labelled(self, data: Any, y: Any) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        names = tuple(str(c) for c in self.classes_)
        if isinstance(data, (str, os.PathLike)) and y is None:
            collection = scan_image_folder(data, classes=names)
            return self._features_of_files(collection.paths), _relabel(collection, names)
        if isinstance(data, ImageCollection):
            return self._features_of_files(data.paths), _relabel(data, names)
        if isinstance(data, DataSplit):
            subset = data.test if len(data.test) else data.validation
            return self._features_of_files(subset.paths), _relabel(subset, names)
        if _is_dataset(data):
            features, labels = self._dataset_features(data)
            return features, labels
        if y is None:
            raise InvalidParameterError(
                "Labels are needed: pass y, or a folder with one sub-folder per class."
            )
        with reduced_precision(self.precision_):
            features = self._features_for_prediction(data)
        encoded, _ = self._integer_labels(y, names)
        collection = from_paths(
            [f"<item {i}>" for i in range(len(features))], encoded, classes=names
        )
        return features, np.asarray(collection.labels, np.int64)

    def evaluate(
        self, data: Any, y: Any = None, *, top_k: Sequence[int] = (1, 5)
    ) -> EvaluationReport:
        """Accuracy, per-class precision/recall/F1, confusion matrix and top-k accuracy.

        Args:
            data: A folder with one sub-folder per class (names must be in
                ``classes_``), an :class:`ImageCollection`, a
                :class:`DataSplit` (its test part, else its validation
                part), images with ``y``, or a dataset of pairs.
            y: Labels (names or indexes) when ``data`` holds only images.
            top_k: Which top-k accuracies to report.
        """
        self._check_fitted()
        if y is not None:
            check_images_argument(data, "TransferClassifier.evaluate")
        features, labels = self._labelled(data, y)
        probabilities = self.trainer_.predict_proba(features)
        return evaluation_report(
            labels, probabilities, [str(c) for c in self.classes_], top_k=top_k
        )

    def score(self, data: Any, y: Any = None) -> float:
        """Accuracy on labelled data (see :meth:`evaluate`)."""
        return self.evaluate(data, y, top_k=(1,)).accuracy

    def to_keras(self) -> Any:
        """One ``tf_keras`` model: preprocessed images in, probabilities out.

        The probabilities are those of :meth:`predict_proba`: calibrated by
        ``temperature_`` when there is one.
        """
        self._check_fitted()
        if self._keras_model is None:
            if self.temperature_ is None:
                self._keras_model = self.trainer_.combine(self.backbone_)
            else:
                import tf_keras

                height, width = self.backbone_.spec.input_size
                inputs = tf_keras.Input((height, width, 3), name="images")
                head = temperature_scaled_head(self.trainer_.head_, self.temperature_)
                outputs = head(self.backbone_.layer(inputs))
                self._keras_model = tf_keras.Model(inputs, outputs, name="classifier")
        return self._keras_model

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: ExportFormat = "saved_model",
        quantization: Quantization = "float32",
        representative_data: str
        | os.PathLike[str]
        | Sequence[str | os.PathLike[str]]
        | None = None,
        calibrated: bool = True,
    ) -> Path:
        """Exports the classifier for serving; see :func:`hubtransfer.export_model`.

        Example:
            >>> model.export("export/tflite", format="tflite", quantization="int8",
            ...     representative_data="photos/")  # doctest: +SKIP
            PosixPath('export/tflite')
        """
        return export_model(
            self,
            path,
            format=format,
            quantization=quantization,
            representative_data=representative_data,
            calibrated=calibrated,
        )

    # Persistence --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Saves the fitted classifier as one self-describing folder, atomically.

        The folder holds the backbone's SavedModel (so it loads offline, even
        if the handle is unreachable), the head's weights (``.npz``), the
        train/validation split the model was fitted on (``split.json``, when
        it was fitted on files with a validation split), and
        ``hubtransfer.json``: format version, classes, label map,
        preprocessing contract, backbone spec and content hash, parameters,
        training history and a SHA-256 of every file. No pickle anywhere.

        The folder is written beside the target and renamed into place; an
        existing model at ``path`` is replaced only once the new one is
        complete. Only a folder that holds a saved model and nothing else is
        replaced: any other non-empty folder is refused, unless ``force``.
        A folder that holds the training data or the model's own backbone is
        never replaced.

        Args:
            path: The folder to write.
            force: Replace a non-empty folder that is not a saved model.

        Returns:
            The folder.

        Raises:
            InvalidParameterError: If ``path`` may not be written (a file, a
                folder of other files, a folder holding the training data).

        Example:
            >>> model.save("models/flowers")  # doctest: +SKIP
            PosixPath('models/flowers')
        """
        self._check_fitted()
        check_bool(force, "force", "TransferClassifier.save")
        rule = WriteRule(kind=MODEL_FOLDER, protected=self._protected(), force=force)
        return write_folder(path, self._write, rule)

    def _protected(self) -> list[Protected]:
        """What a save must never replace: the training data, the backbone it reads."""
        folders: set[Path] = set()
        split = self.__dict__.get("split_")
        if split is not None:
            folders.update(part.root for part in split._parts().values() if part.root is not None)
            folders.update(p.parent for part in split._parts().values() for p in part.paths)
        for paths, _ in self.__dict__.get("_files", {}).values():
            folders.update(Path(p).parent for p in paths)
        protected = [Protected(path=f, what="the training data", inside=True) for f in folders]
        backbone = self.__dict__.get("backbone_")
        if backbone is not None:
            protected.append(Protected(path=backbone.path, what="the model's backbone"))
        return protected

    def __getstate__(self) -> dict[str, Any]:
        """Pickles an unfitted classifier as its parameters, a fitted one as its saved folder.

        A fitted classifier holds TensorFlow objects that do not pickle; it is
        pickled as the tar of what :meth:`save` writes (a few MB plus the
        backbone), and unpickles through :meth:`load` (from a copy unpacked
        once into the cache), so ``pickle`` and ``joblib`` work as
        scikit-learn users expect, with everything ``load`` checks.
        """
        if not hasattr(self, "trainer_"):
            return dict(self.__dict__)
        with tempfile.TemporaryDirectory(prefix="hubtransfer-pickle-") as scratch:
            folder = self.save(Path(scratch) / "model")
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                for file in sorted(folder.rglob("*")):
                    tar.add(file, arcname=file.relative_to(folder).as_posix(), recursive=False)
        return {_PICKLED: buffer.getvalue()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        archive = state.get(_PICKLED)
        if archive is None:
            self.__dict__.update(state)
            return
        self.__dict__.update(TransferClassifier.load(_unpickled_folder(archive)).__dict__)

    def _write(self, folder: Path) -> None:
        shutil.copytree(self.backbone_.path, folder / _BACKBONE_DIR)
        head = self.trainer_.head_
        weights = {f"w{i}": np.asarray(w) for i, w in enumerate(head.get_weights())}
        np.savez(folder / _HEAD_WEIGHTS, **weights)  # type: ignore[arg-type]
        params = self.get_params()
        if isinstance(params["backbone"], BackboneSpec):
            params["backbone"] = params["backbone"].name
        params["strategy"] = None  # a live object of this process, not a setting
        if isinstance(params["augmentation"], Augmentation):
            params["augmentation"] = dataclasses.asdict(params["augmentation"])
        if isinstance(params["class_weight"], Mapping):
            params["class_weight"] = {str(k): float(v) for k, v in params["class_weight"].items()}
        if self.split_ is not None:
            # Inside the folder, so the split and the model it trained are one atomic write.
            self.split_.save(folder / _SPLIT)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        metadata = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "hubtransfer_version": __version__,
            "classes": [str(c) for c in self.classes_],
            "integer_classes": self.__dict__.get("_label_values") is not None,
            "label_map": self.label_map_.to_json(),
            "preprocessing": self.preprocessor_.contract.to_json(),
            "backbone": {
                "spec": self.backbone_.spec.to_json(),
                "content_hash": self.backbone_.content_hash,
            },
            "head": {
                "feature_dim": self.n_features_in_,
                "n_classes": len(self.classes_),
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "weights": sorted(weights),
            },
            "params": params,
            "history": self.history_,
            "calibration": (
                None if self.calibration_report_ is None else self.calibration_report_.to_json()
            ),
            "precision": {
                "resolved": self.precision_,
                "check": (
                    None if self.precision_check_ is None else self.precision_check_.to_json()
                ),
            },
            "files": {p.relative_to(folder).as_posix(): file_sha256(p) for p in files},
        }
        with open(folder / _METADATA, "w", encoding="utf8") as handle:
            json.dump(metadata, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TransferClassifier:
        """Loads a classifier saved with :meth:`save`, checking everything it can.

        Raises:
            ModelFormatError: If the folder is missing, damaged, tampered
                with, or from a newer format version.
        """
        folder = Path(path)
        metadata = _read_metadata(folder)
        _verify_files(folder, metadata)
        try:
            spec = BackboneSpec.from_json(metadata["backbone"]["spec"])
            contract_json = metadata["preprocessing"]
            classes = [str(c) for c in metadata["classes"]]
            label_map = LabelMap.from_json(metadata["label_map"])
            params = dict(metadata["params"])
            head_info = metadata["head"]
            expected_hash = metadata["backbone"]["content_hash"]
            # Absent in models saved before calibration existed: they load uncalibrated.
            calibration = metadata.get("calibration")
            calibration_report_ = (
                None if calibration is None else CalibrationReport.from_json(calibration)
            )
            # Absent in models saved before mixed precision existed: they ran in float32.
            precision_check = (metadata.get("precision") or {}).get("check")
            precision_check_ = (
                None if precision_check is None else PrecisionCheck.from_json(precision_check)
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelFormatError(
                f"The model folder {str(folder)!r} has an incomplete {_METADATA} ({error}). "
                "Save the model again."
            ) from error
        backbone = Backbone(spec, path=folder / _BACKBONE_DIR)
        if backbone.content_hash != expected_hash:
            raise ModelFormatError(
                f"The backbone in {str(folder / _BACKBONE_DIR)!r} does not match the hash "
                "recorded at save time. The folder was altered; save the model again."
            )
        if spec.preprocessing.to_json() != contract_json:
            raise ModelFormatError(
                f"The preprocessing contract in {str(folder / _METADATA)!r} does not match the "
                "backbone spec recorded beside it. The folder was altered; save the model again."
            )
        if list(label_map.classes) != classes:
            raise ModelFormatError(
                f"The label map and the class list in {str(folder / _METADATA)!r} disagree."
            )
        if isinstance(params.get("augmentation"), Mapping):
            params["augmentation"] = Augmentation(**params["augmentation"])
        if isinstance(params.get("class_weight"), Mapping):
            params["class_weight"] = {int(k): v for k, v in params["class_weight"].items()}
        params["backbone"] = spec if spec.name not in _registered_names() else spec.name
        model = cls(**params)
        try:
            model._validate()
        except InvalidParameterError as error:
            raise ModelFormatError(
                f"The parameters in {str(folder / _METADATA)!r} are not valid: {error} "
                "The folder was edited or damaged; save the model again."
            ) from error
        if int(head_info["feature_dim"]) != spec.output_dim:
            raise ModelFormatError(
                f"The head in {str(folder / _METADATA)!r} takes {head_info['feature_dim']} "
                f"features, but the backbone gives {spec.output_dim}. The folder was edited "
                "or damaged; save the model again."
            )
        check_precision_parameter(model.precision, owner=_OWNER)
        # Trained on another machine, a model may ask for a precision this one cannot run:
        # it loads, and runs in float32 (with a warning).
        model.precision_ = resolve_precision(model.precision, owner=_OWNER, strict=False)
        model.precision_check_ = precision_check_
        trainer = model._head_trainer()
        weights = read_head_weights(
            folder / _HEAD_WEIGHTS,
            feature_dim=int(head_info["feature_dim"]),
            n_classes=len(classes),
        )
        head = trainer.build_head(int(head_info["feature_dim"]), len(classes))
        try:
            head.set_weights(weights)
        except ValueError as error:
            raise ModelFormatError(
                f"The head weights in {str(folder / _HEAD_WEIGHTS)!r} do not fit the head "
                f"described in {_METADATA}: {error}. Save the model again."
            ) from error
        trainer.head_ = head
        trainer.history_ = {k: list(v) for k, v in metadata.get("history", {}).items()}
        trainer.n_classes_ = len(classes)
        trainer.feature_dim_ = int(head_info["feature_dim"])
        model.backbone_ = backbone
        model.preprocessor_ = Preprocessor.from_spec(spec, max_pixels=model.max_image_pixels)
        model._store = model._feature_store(backbone)
        model.trainer_ = trainer
        if metadata.get("integer_classes"):
            try:
                model._label_values = np.asarray([int(c) for c in classes], np.int64)
            except ValueError as error:
                raise ModelFormatError(
                    f"The classes in {str(folder / _METADATA)!r} are marked as integers but "
                    f"are not ({error}). Save the model again."
                ) from error
            model.classes_ = model._label_values
        else:
            model.classes_ = np.asarray(classes)
        model.label_map_ = label_map
        model.history_ = trainer.history_
        model.split_ = _saved_split(folder)
        model.n_features_in_ = trainer.feature_dim_
        model.validation_report_ = None
        model.skipped_images_ = ()
        model.calibration_report_ = calibration_report_
        model.temperature_ = (
            None if calibration_report_ is None else calibration_report_.temperature
        )
        model._keras_model = None
        return model


_fits_running: set[int] = set()
_fits_guard = threading.Lock()


@contextlib.contextmanager
def _fitting_alone(model: TransferClassifier) -> Iterator[None]:
    """Refuses a second ``fit`` on the same object while one runs (it would mix their state)."""
    key = id(model)
    with _fits_guard:
        if key in _fits_running:
            raise ConcurrentFitError(
                "fit() is already running on this TransferClassifier in another thread; two "
                "fits would leave it with a mix of both. Fit a copy in each thread "
                "(sklearn.base.clone(model), or TransferClassifier(**model.get_params()))."
            )
        _fits_running.add(key)
    try:
        yield
    finally:
        with _fits_guard:
            _fits_running.discard(key)


_PICKLED: Final = "hubtransfer_saved_model"


def _unpickled_folder(archive: bytes) -> Path:
    """A pickled model's folder, unpacked once into the cache (named by its content)."""
    entry = cache_dir() / "unpickled" / hashlib.sha256(archive).hexdigest()[:32]

    def unpack(folder: Path) -> None:
        file = folder / ".pickled.tar"
        file.write_bytes(archive)
        extract_archive_safely(file, folder, handle=f"a pickled TransferClassifier ({entry.name})")
        file.unlink()

    return build_atomically(entry, unpack, is_complete=lambda p: (p / _METADATA).is_file())


def _folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a folder's files: changes when it is rewritten."""
    entries = []
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            status = file.stat()
            name = file.relative_to(folder).as_posix()
            entries.append((name, status.st_size, status.st_mtime_ns))
    return tuple(entries)


def _saved_split(folder: Path) -> DataSplit | None:
    """The split saved inside the model folder (absent in models saved before it was kept)."""
    file = folder / _SPLIT
    if not file.is_file():
        return None
    try:
        return DataSplit.load(file, verify=False)
    except DatasetError as error:
        raise ModelFormatError(
            f"The split manifest {str(file)!r} of the model cannot be read: {error}"
        ) from error


def _registered_names() -> set[str]:
    from ._registry import default_registry

    return {spec.name for spec in default_registry().list()}


def _read_metadata(folder: Path) -> dict[str, Any]:
    file = folder / _METADATA
    if not folder.is_dir():
        raise ModelFormatError(
            f"No saved model folder at {str(folder)!r}. Pass the folder written by "
            "TransferClassifier.save() or `hubtransfer train --out`."
        )
    metadata = read_description(file)
    if metadata.get("format") != MODEL_FORMAT:
        raise ModelFormatError(
            f"The file {str(file)!r} is not a hubtransfer model description "
            f"(its 'format' is not {MODEL_FORMAT!r})."
        )
    version = metadata.get("format_version")
    if not isinstance(version, int):
        raise ModelFormatError(f"The file {str(file)!r} has no valid 'format_version'.")
    if version > MODEL_FORMAT_VERSION:
        raise ModelFormatError(
            f"The model in {str(folder)!r} was saved in format version {version} by hubtransfer "
            f"{metadata.get('hubtransfer_version', '?')}; this hubtransfer ({__version__}) reads "
            f"versions up to {MODEL_FORMAT_VERSION}. Upgrade hubtransfer to load it."
        )
    validate_description(metadata, file, param_names=TransferClassifier._param_names())
    return metadata


def _verify_files(folder: Path, metadata: Mapping[str, Any]) -> None:
    recorded = metadata.get("files")
    if not isinstance(recorded, dict) or not recorded:
        raise ModelFormatError(f"The file {str(folder / _METADATA)!r} lists no file checksums.")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {
        _METADATA
    }
    missing = sorted(set(recorded) - present)
    extra = sorted(present - set(recorded))
    changed = sorted(
        name for name in set(recorded) & present if file_sha256(folder / name) != recorded[name]
    )
    problems = []
    if missing:
        problems.append(f"missing: {missing[:5]}")
    if changed:
        problems.append(f"changed since it was saved: {changed[:5]}")
    if extra:
        problems.append(f"not part of the saved model: {extra[:5]}")
    if problems:
        raise ModelFormatError(
            f"The model folder {str(folder)!r} is damaged or was tampered with; files "
            f"{'; '.join(problems)}. Save the model again, or restore the folder from a copy."
        )


def _relabel(collection: ImageCollection, names: Sequence[str]) -> npt.NDArray[np.int64]:
    position = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(collection.classes) - set(position))
    if unknown:
        raise DatasetError(
            f"The classes {unknown!r} are not among the model's classes {list(names)!r}."
        )
    return np.asarray([position[collection.classes[i]] for i in collection.labels], np.int64)


def _default_names(labels: npt.NDArray[np.int64]) -> tuple[str, ...]:
    count = int(labels.max()) + 1 if len(labels) else 0
    return tuple(str(i) for i in range(count))


def _stratified_indexes(
    labels: npt.NDArray[np.int64], fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    fake = ImageCollection(
        paths=tuple(Path(f"{i:09d}") for i in range(len(labels))),
        labels=tuple(int(v) for v in labels),
        classes=tuple(str(c) for c in range(int(labels.max()) + 1)),
    )
    split = stratified_split(fake, validation=fraction, seed=seed)
    train = np.asarray([int(p.name) for p in split.train.paths], np.int64)
    validation = np.asarray([int(p.name) for p in split.validation.paths], np.int64)
    return train, validation
