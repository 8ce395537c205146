"""What the benchmark measures: one task per fresh process (``run.py`` starts them).

Each task takes keyword parameters from JSON and returns a JSON-able dict of seconds and
counts; the parent adds the process's peak RSS. TensorFlow is imported inside the tasks, so
the parent stays small (a child's peak RSS would otherwise include the parent's pages).
"""

from __future__ import annotations

import inspect
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Result = dict[str, Any]

SEED_BATCH: Final = 64
"""The batch size of the seed pipeline and of every TensorFlow baseline."""
_LATENCY_IMAGES: Final = 10
_IMAGE_SUFFIXES: Final = (".jpg", ".jpeg", ".png")


# Shared pieces ---------------------------------------------------------------------------


def _labelled_files(folder: Path) -> tuple[list[str], list[int], list[str]]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix in _IMAGE_SUFFIXES)
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return paths, labels, classes


@contextmanager
def _timer(into: Result, key: str) -> Iterator[None]:
    """Stores the block's wall seconds under ``key`` and its CPU seconds (all threads of the
    process: less disturbed by other processes than wall time) under ``key`` + "_cpu"."""
    start, cpu = time.perf_counter(), time.process_time()
    yield
    into[key] = time.perf_counter() - start
    into[f"{key}_cpu"] = time.process_time() - cpu


def _backbone_path() -> Path:
    import hubtransfer

    spec = hubtransfer.resolve_spec(hubtransfer.DEFAULT_BACKBONE)
    return hubtransfer.resolve_handle(spec.handle)


def _input_size() -> tuple[int, int]:
    import hubtransfer

    return hubtransfer.resolve_spec(hubtransfer.DEFAULT_BACKBONE).input_size


def _hub_layer() -> Any:
    import tensorflow_hub as hub

    return hub.KerasLayer(str(_backbone_path()), trainable=False)


def _forward_function(layer: Any) -> Any:
    import tensorflow as tf

    return tf.function(lambda images: layer(images, training=False))


def tf_image_dataset(
    paths: Sequence[str],
    labels: Sequence[int] | None = None,
    *,
    n_classes: int = 0,
    batch_size: int = SEED_BATCH,
    shuffle_seed: int | None = None,
) -> Any:
    """The plain-TensorFlow input pipeline: read, decode JPEG, resize, scale to [0, 1].

    Autotune is off and the parallelism explicit (``os.cpu_count()``): with autotune on,
    tearing an iterator down sometimes stalls for tens of seconds (docs/benchmarks.md).
    """
    import tensorflow as tf

    size = _input_size()

    def load(path: Any) -> Any:
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.resize(image, size) / 255.0

    items: Any = tf.constant(list(paths))
    if labels is not None:
        items = (items, tf.one_hot(list(labels), n_classes))
    data = tf.data.Dataset.from_tensor_slices(items)
    if shuffle_seed is not None:
        data = data.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    parallel = os.cpu_count() or 1
    if labels is None:
        data = data.map(load, num_parallel_calls=parallel)
    else:
        data = data.map(lambda path, target: (load(path), target), num_parallel_calls=parallel)
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.batch(batch_size).prefetch(2).with_options(options)


def _epoch_timer() -> Any:
    import tf_keras

    class EpochTimer(tf_keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def _seed_model(n_classes: int) -> Any:
    """The seed's model: a frozen hub.KerasLayer and a Dense softmax layer."""
    import tf_keras

    model = tf_keras.Sequential(
        [_hub_layer(), tf_keras.layers.Dense(n_classes, activation="softmax")]
    )
    model.build((None, *_input_size(), 3))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _keras_fit(data: Any, n_classes: int, epochs: int) -> Result:
    result: Result = {}
    with _timer(result, "build_s"):
        model = _seed_model(n_classes)
    timer = _epoch_timer()
    with _timer(result, "fit_s"):
        history = model.fit(data, epochs=epochs, callbacks=[timer], verbose=0)
    result["epoch_s"] = timer.seconds
    result["total_s"] = result["build_s"] + result["fit_s"]
    result["final_accuracy"] = float(history.history["accuracy"][-1])
    return result


def _runtime_kwargs(function: Callable[..., Any], runtime: str | None) -> dict[str, Any]:
    if runtime is None:
        return {}
    if "runtime" not in inspect.signature(function).parameters:
        raise ValueError(f"{function.__qualname__} has no 'runtime' parameter.")
    return {"runtime": runtime}


def _shard_count() -> int:
    import hubtransfer

    return sum(1 for _ in (hubtransfer.cache_dir() / "features").glob("*/shard-*"))


SHARED_CACHE: Final = ("embedded", "tflite")
"""Cache entries that are one-off per machine (backbone conversions): linked, not rebuilt."""


def linked_cache(folder: Path, shared: Sequence[str] = SHARED_CACHE) -> Path:
    """Makes ``folder`` a hubtransfer cache that shares only the one-off conversions.

    Features are never shared with another cache, so a fit in an empty one extracts them
    all; the converted embedded SavedModel and its TFLite copy (with its recorded check)
    are linked from the real cache, not built again.
    """
    import hubtransfer

    real = hubtransfer.cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for name in shared:
        link = folder / name
        if (real / name).exists() and not link.exists():
            link.symlink_to((real / name).resolve(), target_is_directory=True)
    return folder


def use_cache(folder: Path, shared: Sequence[str] = SHARED_CACHE) -> None:
    """Points hubtransfer at ``folder`` (see :func:`linked_cache`) for the rest of the process."""
    os.environ["HUBTRANSFER_CACHE_DIR"] = str(linked_cache(folder, shared))


def sample_image() -> str:
    """A real photo that ships with scikit-image (chelsea the cat)."""
    import importlib.util

    found = importlib.util.find_spec("skimage")
    if found is None or not found.submodule_search_locations:
        raise ImportError("scikit-image is needed for the benchmarks.")
    return str(Path(next(iter(found.submodule_search_locations))) / "data" / "chelsea.png")


def _tflite_if_offered() -> str | None:
    import hubtransfer

    offered = "runtime" in inspect.signature(hubtransfer.extract_features).parameters
    return "tflite" if offered else None


def _first_extraction_seconds(backbone: Any, preprocessor: Any, path: str) -> float:
    """One image through ``extract_features`` on TFLite where offered: on first use on a
    machine this converts the backbone and checks the copy (``runtime="auto"`` converts
    only for large jobs, so it is asked for by name)."""
    import hubtransfer

    options = _runtime_kwargs(hubtransfer.extract_features, _tflite_if_offered())
    start = time.perf_counter()
    hubtransfer.extract_features(
        backbone, preprocessor, [path], store=None, verbose=False, **options
    )
    return time.perf_counter() - start


# The pipelines compared ------------------------------------------------------------------


def seed_fit(folder: str, epochs: int) -> Result:
    """The seed: ImageDataGenerator(rescale=1/255).flow_from_directory + hub layer + Dense."""
    import tf_keras

    generator = tf_keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255)
    result: Result = {}
    with _timer(result, "scan_s"):
        flow = generator.flow_from_directory(
            folder, target_size=_input_size(), batch_size=SEED_BATCH
        )
    result.update(_keras_fit(flow, flow.num_classes, epochs))
    result["total_s"] += result["scan_s"]
    result["images"] = flow.samples
    return result


def tfdata_fit(folder: str, epochs: int) -> Result:
    """The seed's model over a tf.data pipeline (autotune off, explicit parallelism)."""
    paths, labels, classes = _labelled_files(Path(folder))
    result: Result = {}
    with _timer(result, "scan_s"):
        data = tf_image_dataset(paths, labels, n_classes=len(classes), shuffle_seed=0)
    result.update(_keras_fit(data, len(classes), epochs))
    result["total_s"] += result["scan_s"]
    result["images"] = len(paths)
    return result


def hubtransfer_fit(folder: str, epochs: int, model_dir: str, refit: dict[str, Any]) -> Result:
    """A cold ``TransferClassifier.fit`` (empty feature cache), then a refit with other
    head settings, which must find every feature in the cache."""
    import hubtransfer

    result: Result = {"images": len(_labelled_files(Path(folder))[0])}
    with _timer(result, "fit_s"):
        model = hubtransfer.TransferClassifier(epochs=epochs, validation_split=0.2, verbose=0).fit(
            folder
        )
    result["epochs_run"] = len(model.history_["loss"])
    report = model.validation_report_
    result["validation_accuracy"] = report.accuracy if report is not None else None
    shards = _shard_count()
    with _timer(result, "refit_s"):
        hubtransfer.TransferClassifier(validation_split=0.2, verbose=0, **refit).fit(folder)
    result["refit_new_shards"] = _shard_count() - shards
    result["shards"] = shards
    model.save(model_dir)
    return result


def hubtransfer_predict(folder: str, model_dir: str, cache_parent: str) -> Result:
    """``predict`` on the whole folder, then single-image latency, each on an empty cache."""
    import hubtransfer

    paths, labels, classes = _labelled_files(Path(folder))
    result: Result = {"images": len(paths)}
    with _timer(result, "load_s"):
        model = hubtransfer.TransferClassifier.load(model_dir)
    with _timer(result, "predict_s"):
        predicted = model.predict(folder)
    # predict() on a folder lists it sorted by path, as _labelled_files does.
    truth = np.asarray(classes)[np.asarray(labels)]
    result["accuracy"] = float(np.mean(predicted == truth))
    result["img_per_s"] = len(paths) / result["predict_s"]
    use_cache(Path(cache_parent) / "latency")
    model = hubtransfer.TransferClassifier.load(model_dir)
    step = max(1, len(paths) // (_LATENCY_IMAGES + 1))
    result.update(_latencies(model, paths[::step][: _LATENCY_IMAGES + 1]))
    return result


def _seconds_each(call: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    seconds = []
    for item in items:
        start = time.perf_counter()
        call(item)
        seconds.append(time.perf_counter() - start)
    return seconds


def _latencies(model: Any, paths: Sequence[str]) -> Result:
    """Single-image predict latency, and what it is made of (first path: warm-up only).

    The variants are measured image by image, one after the other, so that drift in the
    machine's load touches them alike.
    """
    from PIL import Image

    import hubtransfer

    backbone, preprocessor = model.backbone_, model.preprocessor_
    variants: dict[str, Callable[[str], Any]] = {
        "latency_s": lambda p: model.predict([p]),
        "latency_cached_s": lambda p: model.predict([p]),
        "latency_array_s": lambda p: model.predict(np.asarray(Image.open(p).convert("RGB"))),
        "file_digest_s": hubtransfer.file_digest,
        "dataset_s": lambda p: list(preprocessor.dataset([p])),
        "extract_no_cache_s": lambda p: hubtransfer.extract_features(
            backbone, preprocessor, [p], store=None, verbose=False
        ),
    }
    for call in variants.values():  # the first calls trace the functions
        call(paths[0])
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for path in paths[1:]:
        for name, call in variants.items():
            seconds[name] += _seconds_each(call, [path])
    return {
        "latency_s": seconds.pop("latency_s"),
        "latency_cached_s": seconds.pop("latency_cached_s"),
        "latency_array_s": seconds.pop("latency_array_s"),
        "latency_parts": seconds,
    }


def hubtransfer_extract(folder: str, runtime: str | None, paired: bool = False) -> Result:
    """``extract_features`` over the folder's files, no cache: one backbone pass.

    ``paired``: run just before a ``hubtransfer_fit``, as its reference (only recorded).
    """
    import hubtransfer

    paths = _labelled_files(Path(folder))[0]
    result: Result = {"images": len(paths), "runtime": runtime or "default"}
    with _timer(result, "load_s"):
        backbone = hubtransfer.load_backbone(hubtransfer.DEFAULT_BACKBONE)
        preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    options = _runtime_kwargs(hubtransfer.extract_features, runtime)
    with _timer(result, "extract_s"):
        features = hubtransfer.extract_features(
            backbone, preprocessor, paths, store=None, verbose=False, **options
        )
    result["img_per_s"] = len(paths) / result["extract_s"]
    result["feature_shape"] = list(features.shape)
    return result


def tf_forward_limit(folder: str, repeats: int = 2) -> Result:
    """TensorFlow's own limit: the forward pass alone, on batches decoded beforehand."""
    paths = _labelled_files(Path(folder))[0]
    batches = list(tf_image_dataset(paths))
    forward = _forward_function(_hub_layer())
    result: Result = {"images": len(paths)}
    with _timer(result, "trace_s"):
        forward(batches[0]).numpy()
    passes, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            forward(batch).numpy()
        passes.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    result["pass_s"] = passes
    result["pass_cpu_s"] = cpu
    result["img_per_s"] = len(paths) / statistics.median(passes)
    return result


def tf_end_to_end(folder: str) -> Result:
    """Plain TensorFlow from JPEG files: the tf.data pipeline feeding the forward pass."""
    paths = _labelled_files(Path(folder))[0]
    result: Result = {"images": len(paths)}
    with _timer(result, "load_s"):
        forward = _forward_function(_hub_layer())
    with _timer(result, "extract_s"):
        for batch in tf_image_dataset(paths):
            forward(batch).numpy()
    result["img_per_s"] = len(paths) / result["extract_s"]
    return result


def memory_fit(folder: str, epochs: int) -> Result:
    """``TransferClassifier.fit`` alone, cold cache: the parent records the peak RSS."""
    import hubtransfer

    result: Result = {"images": len(_labelled_files(Path(folder))[0])}
    with _timer(result, "fit_s"):
        hubtransfer.TransferClassifier(epochs=epochs, verbose=0).fit(folder)
    return result


def baseline_memory() -> Result:
    """TensorFlow plus the loaded backbone and one forward batch: the floor of every RSS."""
    import tensorflow as tf

    forward = _forward_function(_hub_layer())
    forward(tf.zeros((SEED_BATCH, *_input_size(), 3))).numpy()
    return {}


# Where the time goes ---------------------------------------------------------------------

_STAGE_SAMPLE: Final = 1000
"""Images the per-image stages are measured on (a spread-out sample of the folder)."""


def _core_ms(call: Callable[[Any], Any], items: Sequence[Any]) -> tuple[float, list[Any]]:
    """CPU milliseconds (all threads) per item of ``call``, one item at a time; its outputs."""
    outputs = []
    start = time.process_time()
    for item in items:
        outputs.append(call(item))
    return 1000 * (time.process_time() - start) / len(items), outputs


def _pil_decode_resize(path: str) -> Any:
    """What the seed's loader does per image (keras' load_img: PIL, nearest neighbour)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB").resize(_input_size()[::-1], Image.Resampling.NEAREST)


def _decode_stages(paths: Sequence[str]) -> Result:
    import tensorflow as tf

    size = _input_size()
    read_ms, encoded = _core_ms(lambda p: Path(p).read_bytes(), paths)
    decode_ms, decoded = _core_ms(lambda e: tf.io.decode_jpeg(e, channels=3), encoded)
    resize_ms, _ = _core_ms(lambda image: tf.image.resize(image, size) / 255.0, decoded)
    pil_ms, _ = _core_ms(_pil_decode_resize, paths)
    return {
        "read_core_ms": read_ms,
        "decode_core_ms": decode_ms,
        "resize_core_ms": resize_ms,
        "pil_core_ms": pil_ms,
    }


def _library_pipeline(paths: Sequence[str]) -> Result:
    """hubtransfer's own input pipeline alone (``Preprocessor.dataset``): files to batches."""
    import hubtransfer

    spec = hubtransfer.resolve_spec(hubtransfer.DEFAULT_BACKBONE)
    preprocessor = hubtransfer.Preprocessor.from_spec(spec)
    result: Result = {}
    with _timer(result, "pipeline_s"):
        for _ in preprocessor.dataset(paths, batch_size=SEED_BATCH):
            pass
    result["pipeline_img_per_s"] = len(paths) / result["pipeline_s"]
    return result


def _head_seconds(n_images: int, n_classes: int, epochs: int) -> float:
    import hubtransfer

    rng = np.random.default_rng(0)
    features = rng.normal(size=(n_images, 1280)).astype(np.float32)
    labels = np.arange(n_images) % n_classes
    trainer = hubtransfer.HeadTrainer(epochs=epochs, early_stopping=False, verbose=0)
    start = time.perf_counter()
    trainer.fit(features, labels, n_classes=n_classes)
    return time.perf_counter() - start


def _first_use_seconds(scratch: Path) -> float:
    """The first extraction on a machine: TFLite conversion and check (one-off), in a cache
    that has only the embedded backbone."""
    import hubtransfer

    real = os.environ.get("HUBTRANSFER_CACHE_DIR")
    use_cache(scratch / "first-use", shared=("embedded",))
    try:
        backbone = hubtransfer.load_backbone(hubtransfer.DEFAULT_BACKBONE)
        preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
        return _first_extraction_seconds(backbone, preprocessor, sample_image())
    finally:
        if real is None:
            os.environ.pop("HUBTRANSFER_CACHE_DIR", None)
        else:
            os.environ["HUBTRANSFER_CACHE_DIR"] = real


def stages(folder: str, epochs: int, scratch: str) -> Result:
    """Each stage of a fit on its own: the fixed costs over the whole folder, and the
    per-image costs (read, decode, resize) in CPU time on a sample of it."""
    import tempfile

    import hubtransfer

    paths, _, classes = _labelled_files(Path(folder))
    sample = paths[:: max(1, len(paths) // _STAGE_SAMPLE)]
    result: Result = {"images": len(paths), "sample": len(sample)}
    result["first_use_s"] = _first_use_seconds(Path(scratch))
    result["first_use_runtime"] = _tflite_if_offered()
    with _timer(result, "scan_s"):
        hubtransfer.scan_image_folder(folder)
    with _timer(result, "backbone_load_s"):
        backbone = hubtransfer.load_backbone(hubtransfer.DEFAULT_BACKBONE)
    with _timer(result, "content_hash_s"):
        _ = backbone.content_hash
    with _timer(result, "digest_s"):
        digests = [hubtransfer.file_digest(p) for p in paths]
    result.update(_decode_stages(sample))
    result.update(_library_pipeline(sample))
    result["head_s"] = _head_seconds(int(len(paths) * 0.8), len(classes), epochs)
    features = np.zeros((len(paths), backbone.output_dim), np.float32)
    with tempfile.TemporaryDirectory() as store_folder:
        store = hubtransfer.FeatureStore(store_folder, feature_dim=backbone.output_dim)
        with _timer(result, "store_put_s"):
            store.put(digests, features)
        with _timer(result, "store_get_s"):
            store.get(digests)
    return result


# Accuracy --------------------------------------------------------------------------------

HEAD_SETTINGS: Final[tuple[dict[str, Any], ...]] = (
    {"name": "default (20 epochs, lr 1e-3, early stopping, patience 5)"},
    {"name": "no early stopping", "early_stopping": False},
    {"name": "50 epochs, patience 10", "epochs": 50, "patience": 10},
    {"name": "100 epochs, patience 10", "epochs": 100, "patience": 10},
    {"name": "lr 3e-3", "learning_rate": 3e-3},
    {
        "name": "lr 3e-3, 50 epochs, patience 10",
        "learning_rate": 3e-3,
        "epochs": 50,
        "patience": 10,
    },
    {
        "name": "lr 1e-2, 50 epochs, patience 10",
        "learning_rate": 1e-2,
        "epochs": 50,
        "patience": 10,
    },
    {"name": "l2 1e-4, 100 epochs, patience 10", "l2": 1e-4, "epochs": 100, "patience": 10},
    {"name": "l2 1e-3, 100 epochs, patience 10", "l2": 1e-3, "epochs": 100, "patience": 10},
    {"name": "100 epochs, no early stopping", "epochs": 100, "early_stopping": False},
)
"""HeadTrainer settings tried on the same features when the default falls short."""

LOGISTIC_C: Final = tuple(float(c) for c in np.logspace(-3, 1, 9))

Split = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]


def _accuracy(probabilities: npt.NDArray[Any], labels: npt.NDArray[np.int64]) -> float:
    return float(np.mean(np.asarray(probabilities).argmax(axis=1) == labels))


def _logistic_sweep(train: Split, validation: Split, test: Split) -> Result:
    """L2 logistic regression (lbfgs) on raw and on standardised features, C on validation.

    C grows along the grid and each fit starts from the previous solution (a regularisation
    path), which converges in a fraction of the iterations of cold starts.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = []
    for scaled in (False, True):
        classifier = LogisticRegression(max_iter=2000, warm_start=True)
        model = make_pipeline(StandardScaler(), classifier) if scaled else classifier
        for c in sorted(LOGISTIC_C):
            classifier.set_params(C=c)
            start = time.perf_counter()
            model.fit(*train)
            rows.append(
                {
                    "C": c,
                    "standardised": scaled,
                    "seconds": time.perf_counter() - start,
                    "validation": _accuracy(model.predict_proba(validation[0]), validation[1]),
                    "test": _accuracy(model.predict_proba(test[0]), test[1]),
                }
            )
    best = max(rows, key=lambda row: row["validation"])
    return {"grid": rows, "best": best}


def _head_sweep(train: Split, validation: Split, test: Split, n_classes: int) -> list[Result]:
    import hubtransfer

    rows = []
    for setting in HEAD_SETTINGS:
        options = {k: v for k, v in setting.items() if k != "name"}
        trainer = hubtransfer.HeadTrainer(verbose=0, **options)
        start = time.perf_counter()
        trainer.fit(*train, n_classes=n_classes, validation_data=validation)
        rows.append(
            {
                "name": setting["name"],
                "settings": options,
                "seconds": time.perf_counter() - start,
                "epochs_run": len(trainer.history_["loss"]),
                "validation": _accuracy(trainer.predict_proba(validation[0]), validation[1]),
                "test": _accuracy(trainer.predict_proba(test[0]), test[1]),
            }
        )
    return rows


def accuracy(train_folder: str, test_folder: str) -> Result:
    """The default head against the best linear classifier on the same features."""
    import hubtransfer

    result: Result = {}
    with _timer(result, "fit_s"):
        model = hubtransfer.TransferClassifier(verbose=0).fit(train_folder)
    with _timer(result, "evaluate_s"):
        result["head_test"] = model.evaluate(test_folder, top_k=(1,)).accuracy
    names = [str(c) for c in model.classes_]
    store = hubtransfer.FeatureStore.for_backbone(
        model.backbone_, model.backbone_.spec.preprocessing
    )

    def features(collection: Any) -> Split:
        x = hubtransfer.extract_features(
            model.backbone_, model.preprocessor_, collection.paths, store=store, verbose=False
        )
        y = np.asarray([names.index(collection.classes[i]) for i in collection.labels])
        return x, y

    split = model.split_
    if split is None:
        raise RuntimeError("TransferClassifier.fit(folder) left no split_ to compare on.")
    train, validation = features(split.train), features(split.validation)
    test = features(hubtransfer.scan_image_folder(test_folder))
    result["head_validation"] = _accuracy(
        model.trainer_.predict_proba(validation[0]), validation[1]
    )
    result["sizes"] = {
        "train": len(train[1]),
        "validation": len(validation[1]),
        "test": len(test[1]),
    }
    result["logistic"] = _logistic_sweep(train, validation, test)
    result["head_settings"] = _head_sweep(train, validation, test, len(names))
    return result


def environment() -> Result:
    """Versions, and whether the library offers a choice of runtime."""
    import platform

    import sklearn
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    import hubtransfer

    parameter = inspect.signature(hubtransfer.extract_features).parameters.get("runtime")
    runtime_params = {
        "extract_features": parameter is not None,
        "extract_features_default": None if parameter is None else str(parameter.default),
        "TransferClassifier": "runtime" in hubtransfer.TransferClassifier().get_params(),
    }
    # Converts the embedded backbone, and its TFLite copy, into the real cache on first use,
    # so that the linked caches of the measurements share them: every measurement sees a
    # machine where the library has run before (the one-off cost is measured in stages).
    backbone = hubtransfer.load_backbone(hubtransfer.DEFAULT_BACKBONE)
    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    warm_up = _first_extraction_seconds(backbone, preprocessor, sample_image())
    # The check of OpenVINO (when installed) against TensorFlow is recorded the same way.
    chosen = (
        hubtransfer.select_runtime(backbone).name if runtime_params["extract_features"] else None
    )
    try:
        import openvino

        openvino_version: str | None = openvino.__version__
    except ImportError:
        openvino_version = None
    return {
        "warm_up_s": warm_up,
        "auto_runtime": chosen,
        "versions": {
            "openvino": openvino_version,
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__,
            "tensorflow_hub": hub.__version__,
            "hubtransfer": hubtransfer.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "runtime_parameter": runtime_params,
    }


def prepare(
    work: str,
    flowers_images: int,
    memory_sizes: list[int],
    fashion_per_class: list[int],
) -> Result:
    """Builds (or reuses) every folder the suite needs; returns their paths and statistics."""
    import datasets

    root = Path(work)
    per_class = max(
        max(datasets.flowers_counts(flowers_images)),
        *(max(datasets.equal_counts(n)) for n in memory_sizes),
    )
    pool = datasets.ImagePool(root / "pool", per_class=per_class)
    result: Result = {}
    with _timer(result, "build_s"):
        pool.build()
    flowers = pool.link_folder(
        root / f"flowers-like-{flowers_images}", datasets.flowers_counts(flowers_images)
    )
    memory = {
        str(n): str(pool.link_folder(root / f"scaling-{n}", datasets.equal_counts(n)))
        for n in memory_sizes
    }
    train, test = datasets.fashion_folders(
        root, train_per_class=fashion_per_class[0], test_per_class=fashion_per_class[1]
    )
    result.update(
        {
            "flowers": str(flowers),
            "flowers_stats": datasets.folder_stats(flowers),
            "memory": memory,
            "fashion_train": str(train),
            "fashion_test": str(test),
            "fashion_stats": {
                "train": datasets.folder_stats(train),
                "test": datasets.folder_stats(test),
            },
        }
    )
    return result


TASKS: Final[dict[str, Callable[..., Result]]] = {
    task.__name__: task
    for task in (
        seed_fit,
        tfdata_fit,
        hubtransfer_fit,
        hubtransfer_predict,
        hubtransfer_extract,
        tf_forward_limit,
        tf_end_to_end,
        memory_fit,
        baseline_memory,
        stages,
        accuracy,
        environment,
        prepare,
    )
}
