"""Feature runtimes: what runs a frozen backbone over preprocessed images.

A frozen backbone is a fixed function, so any engine that computes the same
function will do. Three are offered:

* :class:`TensorFlowRuntime` runs the backbone's ``tf_keras`` layer in a
  ``tf.function``: always available, and the reference.
* :class:`TFLiteRuntime` runs a float32 TensorFlow Lite copy of the backbone
  with the XNNPACK delegate: about 1.2 to 1.5 times as fast as TensorFlow's
  forward pass on a 2-core CPU (``benchmarks/run.py``).
* :class:`OpenVINORuntime` runs the same TFLite file with Intel's OpenVINO
  (the optional ``openvino`` extra), float32 forced: on the 2-core Xeon of
  the benchmarks 1.2 to 1.7 times as fast as XNNPACK and 1.6 to 2.2 times as
  fast as TensorFlow per image (the more so the quieter the host).

:func:`select_runtime` picks one. ``"auto"`` converts the backbone to TFLite
once (:func:`tflite_model_for`, cached beside the backbone under
``cache_dir() / "tflite"``), checks on a fixed batch that its features match
TensorFlow's within :data:`TFLITE_ATOL` + :data:`TFLITE_RTOL` ``* |tf|``, and
falls back to TensorFlow with a warning when the conversion or the check
fails. With OpenVINO installed, ``"auto"`` first tries it on the same file,
under the same check, and falls back to TFLite when it is not exact. The
checks' results are kept in a small JSON file next to the model, so later
processes do not repeat them.

The conversion is float32 with no quantisation and no TensorFlow ("select")
ops, so the TFLite model does the same arithmetic in another order: features
differ from TensorFlow's by about 1e-5 on EfficientNet-Lite0 (features up to
~6), the size of the differences between TensorFlow builds on different CPUs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
import time
import uuid
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ._cache import _file_lock, cache_dir, file_sha256
from ._exceptions import InvalidParameterError, OpenVINOUnavailableError, TFLiteUnavailableError
from ._files import is_write_fault

if TYPE_CHECKING:
    from ._backbone import Backbone

__all__ = [
    "TFLITE_ATOL",
    "TFLITE_RTOL",
    "FeatureRuntime",
    "OpenVINORuntime",
    "OpenVINOUnavailableError",
    "RuntimeChoice",
    "TFLiteRuntime",
    "TFLiteUnavailableError",
    "TensorFlowRuntime",
    "select_runtime",
    "tflite_model_for",
]

_LOGGER: Final = logging.getLogger(__name__)

RuntimeChoice = Literal["auto", "openvino", "tflite", "tensorflow"]
RUNTIME_CHOICES: Final[tuple[RuntimeChoice, ...]] = (
    "auto",
    "openvino",
    "tflite",
    "tensorflow",
)
"""Every name :func:`select_runtime` takes."""
CONVERTED_RUNTIMES: Final[tuple[RuntimeChoice, ...]] = ("openvino", "tflite")
"""The runtimes that run the float32 TFLite copy on the CPU (float32 only, no replicas)."""

TFLITE_FORMAT_VERSION: Final = 1
"""Part of the cached file name: bump when the conversion changes."""

TFLITE_ATOL: Final = 1e-4
"""Absolute part of the TFLite-vs-TensorFlow check (measured differences: ~1e-5)."""
TFLITE_RTOL: Final = 1e-3
"""Relative part of the check, times ``|tensorflow feature|``."""

_VERIFICATION_IMAGES: Final = 4
_FLATBUFFER_IDENTIFIER: Final = b"TFL3"
_DEPRECATION_MESSAGE: Final = r"(?s).*tf\.lite\.Interpreter is deprecated"


@runtime_checkable
class FeatureRuntime(Protocol):
    """Maps a batch of preprocessed images to backbone features.

    Implementations take ``float32`` ``[n, height, width, 3]`` (``n`` may be
    0) and return ``float32`` ``[n, output_dim]``.
    """

    @property
    def name(self) -> str:
        """Short identifier: ``"tensorflow"``, ``"tflite"`` or ``"openvino"``."""
        ...

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Runs the backbone on ``batch``."""
        ...


def _available_cpus() -> int:
    # The CPUs this process may use (taskset, cgroup cpusets), not all the machine has.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _check_threads(num_threads: object, owner: str) -> None:
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    ):
        raise InvalidParameterError(
            f"The 'num_threads' parameter of {owner} must be a positive int or None. "
            f"Got {num_threads!r} instead."
        )


def _check_batch(batch: object, shape: tuple[int, int, int], owner: str) -> np.ndarray:
    array = np.ascontiguousarray(batch, dtype=np.float32)
    if array.ndim != 4 or array.shape[1:] != shape:
        raise InvalidParameterError(
            f"{owner} needs images shaped [n, {shape[0]}, {shape[1]}, {shape[2]}]; got "
            f"{array.shape}. Preprocess them with hubtransfer.Preprocessor.from_spec(spec)."
        )
    return array


class TensorFlowRuntime:
    """Runs the backbone's TensorFlow layer (inference mode) in a ``tf.function``.

    Safe to call from several threads, as a ``tf.function`` is.

    Args:
        backbone: A loaded backbone.
    """

    def __init__(self, backbone: Backbone) -> None:
        import tensorflow as tf

        height, width = backbone.spec.input_size
        self._shape: Final = (height, width, 3)
        self._output_dim: Final = backbone.output_dim
        layer = backbone.layer
        # A fixed signature with an open batch size: the last, smaller batch reuses the trace.
        self._forward: Final[Any] = tf.function(
            lambda images: layer(images, training=False),
            input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)],
            autograph=False,
        )

    @property
    def name(self) -> str:
        """``"tensorflow"``."""
        return "tensorflow"

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Features of a float32 batch ``[n, height, width, 3]``."""
        array = _check_batch(batch, self._shape, "TensorFlowRuntime")
        if not len(array):
            return np.zeros((0, self._output_dim), np.float32)
        result: npt.NDArray[np.float32] = np.asarray(self._forward(array).numpy(), dtype=np.float32)
        return result

    def __repr__(self) -> str:
        return f"TensorFlowRuntime(input_shape={self._shape})"


def _interpreter_class() -> Any:
    """LiteRT's interpreter if ``ai-edge-litert`` is installed, else TensorFlow's own.

    Both run the same kernels at the same speed (measured); ``tf.lite.Interpreter``
    warns that it is deprecated, and is the one TensorFlow ships.
    """
    try:
        return importlib.import_module("ai_edge_litert.interpreter").Interpreter
    except ImportError:
        pass
    import tensorflow as tf

    interpreter = getattr(getattr(tf, "lite", None), "Interpreter", None)
    if interpreter is None:
        raise TFLiteUnavailableError(
            f"This TensorFlow ({tf.__version__}) has no tf.lite.Interpreter. "
            "Install the LiteRT runtime with: pip install ai-edge-litert"
        )
    return interpreter


class TFLiteRuntime:
    """Runs a float32 TFLite model with the XNNPACK delegate, one image per invoke.

    The model must take one ``[1, height, width, 3]`` float32 input and
    return ``[1, output_dim]`` (what :func:`tflite_model_for` writes). Images
    are run one at a time: on the 2-core test machine that was as fast as or
    faster than resizing the input to whole batches, and it needs no
    re-allocation for the last, smaller batch. ``invoke`` releases the GIL,
    so a ``tf.data`` pipeline keeps decoding while the model runs.

    Batches of at least ``2 * num_threads`` images are instead split across
    ``num_threads`` single-threaded interpreters working side by side, one
    per CPU: throughput, not latency, is what counts there, and it spares
    XNNPACK's threads their synchronisation (3-5% less CPU per image on the
    2-core test machine, features identical bit for bit). Single images and
    small batches use the one interpreter with all ``num_threads``.

    Thread safety: interpreters are not thread-safe; calls are serialised by
    a lock. For parallel inference build one runtime per thread (each with
    fewer ``num_threads``).

    Args:
        model_path: The ``.tflite`` file.
        num_threads: Threads for XNNPACK; default the CPUs this process may use.

    Raises:
        TFLiteUnavailableError: If no interpreter is available or the file is
            not a loadable TFLite model of that form (the message names it).
    """

    def __init__(
        self, model_path: str | os.PathLike[str], *, num_threads: int | None = None
    ) -> None:
        _check_threads(num_threads, "TFLiteRuntime")
        self.model_path: Final = Path(model_path)
        self.num_threads: Final = num_threads or _available_cpus()
        interpreter_class = _interpreter_class()
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", _DEPRECATION_MESSAGE, UserWarning)
                interpreter = interpreter_class(
                    model_path=str(self.model_path), num_threads=self.num_threads
                )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError, OSError) as error:
            raise TFLiteUnavailableError(
                f"The TFLite model {str(self.model_path)!r} cannot be loaded: {error}. "
                "Delete the file; it is converted again on next use."
            ) from error
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        input_shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
        output_shape = tuple(int(d) for d in outputs[0]["shape"]) if len(outputs) == 1 else ()
        if (
            len(input_shape) != 4
            or input_shape[0] != 1
            or input_shape[3] != 3
            or inputs[0]["dtype"] is not np.float32
            or len(output_shape) != 2
            or output_shape[0] != 1
            or outputs[0]["dtype"] is not np.float32
        ):
            raise TFLiteUnavailableError(
                f"The TFLite model {str(self.model_path)!r} does not map one float32 image "
                f"[1, height, width, 3] to float32 [1, dim] (inputs {_describe(inputs)}, "
                f"outputs {_describe(outputs)}). Convert it with hubtransfer's "
                "tflite_model_for, or delete it."
            )
        self._interpreter: Final[Any] = interpreter
        self._input_index: Final = int(inputs[0]["index"])
        self._output_index: Final = int(outputs[0]["index"])
        self._shape: Final = (input_shape[1], input_shape[2], 3)
        self.output_dim: Final = output_shape[1]
        self._lock: Final = threading.Lock()
        self._interpreter_class: Final = interpreter_class
        self._side_by_side: list[Any] = []
        self._pool: ThreadPoolExecutor | None = None

    @property
    def name(self) -> str:
        """``"tflite"``."""
        return "tflite"

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Features of a float32 batch ``[n, height, width, 3]``, any ``n``."""
        array = _check_batch(batch, self._shape, "TFLiteRuntime")
        result = np.empty((len(array), self.output_dim), np.float32)
        with self._lock:
            if self.num_threads > 1 and len(array) >= 2 * self.num_threads:
                pool, interpreters = self._side_by_side_interpreters()
                bounds = np.linspace(0, len(array), len(interpreters) + 1).astype(int)
                parts = [
                    pool.submit(self._run, interpreter, array, result, start, stop)
                    for interpreter, start, stop in zip(
                        interpreters, bounds[:-1], bounds[1:], strict=True
                    )
                ]
                for part in parts:
                    part.result()
            else:
                self._run(self._interpreter, array, result, 0, len(array))
        return result

    def _run(
        self,
        interpreter: Any,
        array: npt.NDArray[np.float32],
        result: npt.NDArray[np.float32],
        start: int,
        stop: int,
    ) -> None:
        for position in range(start, stop):
            interpreter.set_tensor(self._input_index, array[position : position + 1])
            interpreter.invoke()  # releases the GIL
            result[position] = interpreter.get_tensor(self._output_index)[0]

    def _side_by_side_interpreters(self) -> tuple[ThreadPoolExecutor, list[Any]]:
        if self._pool is None:
            interpreters = []
            for _ in range(self.num_threads):
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", _DEPRECATION_MESSAGE, UserWarning)
                    interpreter = self._interpreter_class(
                        model_path=str(self.model_path), num_threads=1
                    )
                interpreter.allocate_tensors()
                interpreters.append(interpreter)
            self._side_by_side = interpreters
            self._pool = ThreadPoolExecutor(
                max_workers=self.num_threads, thread_name_prefix="hubtransfer-tflite"
            )
        return self._pool, self._side_by_side

    def __repr__(self) -> str:
        return f"TFLiteRuntime({str(self.model_path)!r}, num_threads={self.num_threads})"


def _openvino() -> Any:
    try:
        return importlib.import_module("openvino")
    except ImportError as error:
        raise OpenVINOUnavailableError(
            "OpenVINO is not installed (it is optional). Install it with: "
            "pip install 'hubtransfer[openvino]', or use runtime='tflite'."
        ) from error


def openvino_available() -> bool:
    """Whether the optional OpenVINO runtime is installed."""
    try:
        _openvino()
    except OpenVINOUnavailableError:
        return False
    return True


class OpenVINORuntime:
    """Runs a float32 TFLite model with OpenVINO on the CPU, in float32.

    OpenVINO reads the ``.tflite`` file that :func:`tflite_model_for` writes
    (no other conversion) and compiles it for this CPU. Precision is forced to
    float32: on CPUs with bfloat16 units OpenVINO would otherwise compute in
    bfloat16, which changes features by about 1%.

    Single images and small batches run on one request using all
    ``num_threads`` (lowest latency). Batches of at least ``2 * num_threads``
    images run on ``num_threads`` single-threaded streams side by side
    (highest throughput: on the 2-core benchmark machine 10 to 15 core-ms
    per EfficientNet-Lite0 image by the host's load, against 13 to 19 for
    XNNPACK and 23 to 24 for TensorFlow). Waiting for results releases the
    GIL, so a ``tf.data`` pipeline keeps decoding meanwhile.

    Thread safety: calls are serialised by a lock.

    Args:
        model_path: The ``.tflite`` file: one float32 image ``[1, height,
            width, 3]`` in, float32 ``[1, dim]`` out.
        num_threads: CPU threads; default the CPUs this process may use.

    Raises:
        OpenVINOUnavailableError: If OpenVINO is not installed, or cannot load
            the file as a model of that form (the message names it).

    Example:
        >>> import numpy as np, hubtransfer
        >>> from hubtransfer._runtime import tflite_model_for
        >>> backbone = hubtransfer.load_backbone("efficientnet_lite0_embedded_fv")
        >>> runtime = hubtransfer.OpenVINORuntime(  # doctest: +SKIP
        ...     tflite_model_for(backbone))  # needs the openvino extra
        >>> runtime(np.zeros((2, 224, 224, 3), np.float32)).shape  # doctest: +SKIP
        (2, 1280)
    """

    def __init__(
        self, model_path: str | os.PathLike[str], *, num_threads: int | None = None
    ) -> None:
        _check_threads(num_threads, "OpenVINORuntime")
        openvino = _openvino()
        self.model_path: Final = Path(model_path)
        self.num_threads: Final = num_threads or _available_cpus()
        self._core: Final[Any] = openvino.Core()
        try:
            model = self._core.read_model(str(self.model_path))
            inputs, outputs = list(model.inputs), list(model.outputs)
            input_shape = _static_shape(inputs[0]) if len(inputs) == 1 else ()
            output_shape = _static_shape(outputs[0]) if len(outputs) == 1 else ()
            float32 = openvino.Type.f32
            if (
                len(input_shape) != 4
                or input_shape[0] != 1
                or input_shape[3] != 3
                or inputs[0].get_element_type() != float32
                or len(output_shape) != 2
                or output_shape[0] != 1
                or outputs[0].get_element_type() != float32
            ):
                raise OpenVINOUnavailableError(
                    f"The model {str(self.model_path)!r} does not map one float32 image "
                    f"[1, height, width, 3] to float32 [1, dim] (input {input_shape}, output "
                    f"{output_shape}). Convert it with hubtransfer's tflite_model_for."
                )
            self._latency: Final[Any] = self._compile(
                model, PERFORMANCE_HINT="LATENCY", INFERENCE_NUM_THREADS=self.num_threads
            )
            self._request: Final[Any] = self._latency.create_infer_request()
        except RuntimeError as error:
            if isinstance(error, OpenVINOUnavailableError):
                raise
            raise OpenVINOUnavailableError(
                f"OpenVINO cannot load the model {str(self.model_path)!r}: "
                f"{_short_reason(error)}. Delete the file; it is converted again on next use."
            ) from error
        self._model: Final[Any] = model
        self._shape: Final = (input_shape[1], input_shape[2], 3)
        self.output_dim: Final = output_shape[1]
        self._lock: Final = threading.Lock()
        self._queue: Any = None
        self._results: npt.NDArray[np.float32] = np.empty((0, self.output_dim), np.float32)

    def _compile(self, model: Any, **config: object) -> Any:
        # Float32 always: the features must match TensorFlow's.
        settings = {"INFERENCE_PRECISION_HINT": "f32", **config}
        return self._core.compile_model(model, "CPU", settings)

    @property
    def name(self) -> str:
        """``"openvino"``."""
        return "openvino"

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Features of a float32 batch ``[n, height, width, 3]``, any ``n``."""
        array = _check_batch(batch, self._shape, "OpenVINORuntime")
        result = np.empty((len(array), self.output_dim), np.float32)
        with self._lock:
            if self.num_threads > 1 and len(array) >= 2 * self.num_threads:
                queue = self._side_by_side_queue()
                self._results = result
                for position in range(len(array)):
                    queue.start_async({0: array[position : position + 1]}, position)
                queue.wait_all()  # releases the GIL
                self._results = np.empty((0, self.output_dim), np.float32)
            else:
                for position in range(len(array)):
                    self._request.infer({0: array[position : position + 1]})
                    result[position] = self._request.get_output_tensor(0).data[0]
        return result

    def _side_by_side_queue(self) -> Any:
        if self._queue is None:
            compiled = self._compile(
                self._model,
                PERFORMANCE_HINT="THROUGHPUT",
                NUM_STREAMS=self.num_threads,
                INFERENCE_NUM_THREADS=self.num_threads,
            )
            queue = _openvino().AsyncInferQueue(compiled, self.num_threads)
            queue.set_callback(self._store_result)
            self._queue = queue
        return self._queue

    def _store_result(self, request: Any, position: int) -> None:
        self._results[position] = request.get_output_tensor(0).data[0]

    def __repr__(self) -> str:
        return f"OpenVINORuntime({str(self.model_path)!r}, num_threads={self.num_threads})"


def _static_shape(port: Any) -> tuple[int, ...]:
    shape = port.get_partial_shape()
    if shape.is_dynamic:
        return ()
    return tuple(int(d) for d in shape.to_shape())


def _describe(details: list[dict[str, Any]]) -> str:
    return ", ".join(f"{list(d['shape'])} {np.dtype(d['dtype']).name}" for d in details) or "none"


# --- The cached model and its record ----------------------------------------------------------
#
# <content hash>-v1.tflite is the model; <content hash>-v1.json beside it records the model's
# SHA-256 (written after the model) and, once done, the check against TensorFlow. A model
# whose bytes do not match its record is never loaded: a damaged flatbuffer can crash the
# interpreter rather than raise.

_conversion_locks: dict[Path, threading.Lock] = {}
_conversion_locks_guard: Final = threading.Lock()
_failed_conversions: dict[Path, str] = {}
"""Targets that failed in this process (conversion or check): not retried on every call."""


def _tflite_path(backbone: Backbone) -> Path:
    name = f"{backbone.content_hash}-v{TFLITE_FORMAT_VERSION}.tflite"
    return cache_dir() / "tflite" / name


def _record_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def _write_json_atomically(target: Path, record: dict[str, Any]) -> None:
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True), "utf8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _intact_record(model_path: Path) -> dict[str, Any] | None:
    """The model's record if the file is a TFLite flatbuffer whose bytes match it."""
    try:
        with open(model_path, "rb") as handle:
            header = handle.read(8)
        record = json.loads(_record_path(model_path).read_text("utf8"))
        if header[4:8] != _FLATBUFFER_IDENTIFIER or not isinstance(record, dict):
            return None
        if record.get("tflite_sha256") != file_sha256(model_path):
            return None
    except (OSError, ValueError):
        return None
    return record


def _conversion_lock(target: Path) -> threading.Lock:
    with _conversion_locks_guard:
        return _conversion_locks.setdefault(target, threading.Lock())


def _short_reason(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # The converter's message is pages of MLIR; the line naming the op is the useful one.
    named = [line for line in lines if "op is neither" in line or "is not supported" in line]
    chosen = named[0] if named else (lines[0] if lines else type(error).__name__)
    return f"{type(error).__name__}: {chosen[:300]}"


def _tensorflow_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


def _convert(backbone: Backbone) -> bytes:
    import tensorflow as tf

    height, width = backbone.spec.input_size
    layer = backbone.layer
    # The same computation TensorFlowRuntime runs, traced for one image: a static
    # shape lets the converter fold every shape computation.
    forward = tf.function(
        lambda images: layer(images, training=False),
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="images")],
        autograph=False,
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], layer
    )
    # Builtin ops only (select TF ops need the Flex delegate); float32, no quantisation.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = []
    model: bytes = converter.convert()
    return model


def tflite_model_for(backbone: Backbone, *, rebuild: bool = False) -> Path:
    """Returns the backbone's float32 TFLite model, converting it on first use.

    The model is written to ``cache_dir() / "tflite" / "<content hash>-v1.tflite"``
    through a temporary file and an atomic rename, under a lock, so concurrent
    threads and processes convert once and never see half a file. A JSON file
    beside it records the model's SHA-256; a model that does not match it
    (damaged, truncated, not a TFLite file) is converted again. A conversion
    that fails leaves no file and is remembered: later calls in the process
    raise at once.

    Args:
        backbone: A loaded backbone.
        rebuild: Convert again even if an intact file exists.

    Returns:
        The ``.tflite`` file.

    Raises:
        TFLiteUnavailableError: If the backbone cannot be converted (for
            example, it uses an op TFLite has no builtin kernel for).
    """
    return _ensure_tflite(backbone, rebuild=rebuild)[0]


def _ensure_tflite(backbone: Backbone, *, rebuild: bool) -> tuple[Path, bool]:
    """The model file, and whether this call converted it."""
    try:
        return _ensure_tflite_in_cache(backbone, rebuild=rebuild)
    except OSError as error:
        if not is_write_fault(error):
            raise
        # A read-only or full cache: the backbone runs on TensorFlow, as if it did not convert.
        message = (
            f"The TensorFlow Lite copy of {backbone.spec.name!r} cannot be written to the cache "
            f"({error.strerror or error}: {error.filename!r}); it runs on TensorFlow instead. "
            "Set HUBTRANSFER_CACHE_DIR to a writable folder to use it."
        )
        _failed_conversions[_tflite_path(backbone)] = message
        raise TFLiteUnavailableError(message) from error


def _ensure_tflite_in_cache(backbone: Backbone, *, rebuild: bool) -> tuple[Path, bool]:
    target = _tflite_path(backbone)
    if target in _failed_conversions:
        raise TFLiteUnavailableError(_failed_conversions[target])
    if not rebuild and _intact_record(target) is not None:
        return target, False
    with _conversion_lock(target):
        if target in _failed_conversions:
            raise TFLiteUnavailableError(_failed_conversions[target])
        with _file_lock(target.parent / f".{target.name}.lock"):
            if not rebuild and _intact_record(target) is not None:
                # Another thread or process finished it while this one waited.
                return target, False
            _LOGGER.info("Converting backbone %s to TFLite: %s", backbone.spec.name, target)
            started = time.monotonic()
            try:
                model = _convert(backbone)
            except Exception as error:
                message = (
                    f"The backbone {backbone.spec.name!r} ({str(backbone.path)!r}) cannot be "
                    f"converted to TensorFlow Lite: {_short_reason(error)}. It runs on "
                    "TensorFlow instead; pass runtime='tensorflow' to skip the attempt."
                )
                _failed_conversions[target] = message
                raise TFLiteUnavailableError(message) from error
            temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
            try:
                temporary.write_bytes(model)
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
            # Written last: a crash before this leaves a model that is converted again.
            _write_json_atomically(
                _record_path(target),
                {
                    "tflite_sha256": hashlib.sha256(model).hexdigest(),
                    "backbone": backbone.spec.name,
                    "converted_with_tensorflow": _tensorflow_version(),
                },
            )
            _LOGGER.info(
                "Converted backbone %s to TFLite in %.1f s: %s",
                backbone.spec.name,
                time.monotonic() - started,
                target,
            )
    return target, True


# --- The check against TensorFlow ---------------------------------------------------------------


def verification_batch(backbone: Backbone) -> npt.NDArray[np.float32]:
    """A fixed, seeded batch of images in the backbone's input value range.

    Half of it is pixel noise, half smooth colour fields (closer to photos),
    mapped through the preprocessing contract's value range, mean and std.
    """
    height, width = backbone.spec.input_size
    rng = np.random.default_rng(20240611)
    count = _VERIFICATION_IMAGES
    noise = rng.uniform(0.0, 1.0, (count // 2, height, width, 3))
    coarse = rng.uniform(0.0, 1.0, (count - count // 2, 4, 4, 3))
    rows = np.minimum(np.arange(height) * 4 // height, 3)
    columns = np.minimum(np.arange(width) * 4 // width, 3)
    smooth = coarse[:, rows][:, :, columns]
    unit = np.concatenate([noise, smooth]).astype(np.float32)
    contract = backbone.spec.preprocessing
    low, high = contract.value_range
    pixels = unit * np.float32(high - low) + np.float32(low)
    if contract.mean is not None and contract.std is not None:
        pixels = (pixels - np.asarray(contract.mean, np.float32)) / np.asarray(
            contract.std, np.float32
        )
    result: npt.NDArray[np.float32] = pixels.astype(np.float32)
    return result


def compare_features(
    candidate: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]
) -> tuple[bool, float]:
    """Whether ``|candidate - reference| <= TFLITE_ATOL + TFLITE_RTOL * |reference|`` everywhere.

    Returns:
        ``(passed, max_abs_difference)``; non-finite candidates fail.
    """
    difference = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    allowed = TFLITE_ATOL + TFLITE_RTOL * np.abs(reference.astype(np.float64))
    finite = bool(np.all(np.isfinite(candidate)))
    max_difference = float(difference.max()) if difference.size else 0.0
    return finite and bool(np.all(difference <= allowed)), max_difference


def _check(
    runtime: TFLiteRuntime | OpenVINORuntime,
    backbone: Backbone,
    sample: npt.NDArray[np.float32] | None,
    record: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    """The check's result, read from the model's record or computed now (and recorded).

    TFLite's check is kept under ``"check"`` in the record, OpenVINO's under
    ``"openvino_check"`` (with OpenVINO's version: a new one is checked again).

    Returns:
        The check (``passed``, ``max_abs_difference``...) and whether it was computed now.
    """
    expected: dict[str, Any] = {
        "atol": TFLITE_ATOL,
        "rtol": TFLITE_RTOL,
        "tensorflow": _tensorflow_version(),
    }
    key = "check"
    if isinstance(runtime, OpenVINORuntime):
        key = "openvino_check"
        expected["openvino"] = str(_openvino().__version__)
    previous = record.get(key)
    if (
        isinstance(previous, dict)
        and all(previous.get(k) == v for k, v in expected.items())
        and isinstance(previous.get("passed"), bool)
    ):
        return previous, False
    batch = verification_batch(backbone)
    if sample is not None and len(sample):
        batch = np.concatenate([batch, np.asarray(sample[:_VERIFICATION_IMAGES], np.float32)])
    passed, max_difference = compare_features(runtime(batch), TensorFlowRuntime(backbone)(batch))
    check = {**expected, "passed": passed, "max_abs_difference": max_difference}
    check["images"] = len(batch)
    try:
        # Re-read: the other runtime's check may have been recorded meanwhile.
        latest = _intact_record(runtime.model_path) or record
        _write_json_atomically(_record_path(runtime.model_path), {**latest, key: check})
    except OSError as error:  # A read-only cache only costs a new check next time.
        _LOGGER.warning(
            "Cannot record the %s check beside %s: %s", runtime.name, runtime.model_path, error
        )
    _LOGGER.info(
        "Checked %s against TensorFlow for %s on %d images: max |difference| %.3g (%s).",
        "OpenVINO" if key == "openvino_check" else "TFLite",
        backbone.spec.name,
        len(batch),
        max_difference,
        "passed" if passed else "failed",
    )
    return check, True


def _inexact(check: dict[str, Any], model_path: Path, backbone: Backbone) -> TFLiteUnavailableError:
    return TFLiteUnavailableError(
        f"The TFLite copy {str(model_path)!r} of backbone {backbone.spec.name!r} gives "
        f"features that differ from TensorFlow's by up to {check['max_abs_difference']:.3g} "
        f"(allowed: {TFLITE_ATOL:g} + {TFLITE_RTOL:g} * |feature|). It runs on TensorFlow "
        "instead; pass runtime='tensorflow' to skip the attempt."
    )


# --- Selection --------------------------------------------------------------------------------

_selected: weakref.WeakKeyDictionary[Backbone, dict[tuple[str, bool], FeatureRuntime]] = (
    weakref.WeakKeyDictionary()
)
_selected_guard: Final = threading.Lock()


def _load_and_check(
    backbone: Backbone, *, rebuild: bool, verify: bool, sample: npt.NDArray[np.float32] | None
) -> TFLiteRuntime:
    path, converted = _ensure_tflite(backbone, rebuild=rebuild)
    try:
        runtime = TFLiteRuntime(path)
        record = _intact_record(path) if verify else None
        if verify and record is None:
            raise TFLiteUnavailableError(
                f"The TFLite model {str(path)!r} changed while it was being loaded."
            )
        if record is not None:
            check, computed = _check(runtime, backbone, sample, record)
            if not check["passed"]:
                error = _inexact(check, path, backbone)
                if converted or not computed:
                    # A fresh conversion, or one found inexact before: it is what it is.
                    _failed_conversions[path] = str(error)
                raise error
    except TFLiteUnavailableError as error:
        if converted:
            _failed_conversions[path] = str(error)
        raise
    return runtime


def _open_tflite(
    backbone: Backbone, *, verify: bool, sample: npt.NDArray[np.float32] | None
) -> TFLiteRuntime:
    if backbone.trainable:
        raise TFLiteUnavailableError(
            f"The backbone {backbone.spec.name!r} is trainable: its weights may differ from "
            "the files a TFLite copy is made from. Load it with trainable=False."
        )
    try:
        return _load_and_check(backbone, rebuild=False, verify=verify, sample=sample)
    except TFLiteUnavailableError as error:
        if _tflite_path(backbone) in _failed_conversions:
            raise
        # A cached model that would not load, or newly fails the check: convert once more.
        _LOGGER.warning("%s Converting it again.", error)
    try:
        return _load_and_check(backbone, rebuild=True, verify=verify, sample=sample)
    except TFLiteUnavailableError as error:
        _failed_conversions[_tflite_path(backbone)] = str(error)
        raise


_failed_openvino: dict[Path, str] = {}
"""TFLite files OpenVINO could not run exactly in this process: not tried again."""


def _open_openvino(
    backbone: Backbone, *, verify: bool, sample: npt.NDArray[np.float32] | None
) -> OpenVINORuntime:
    """OpenVINO on the backbone's TFLite copy, checked against TensorFlow like TFLite is."""
    _openvino()  # not installed: say so before converting anything
    if backbone.trainable:
        raise OpenVINOUnavailableError(
            f"The backbone {backbone.spec.name!r} is trainable: its weights may differ from "
            "the files its TFLite copy is made from. Load it with trainable=False."
        )
    try:
        path, _ = _ensure_tflite(backbone, rebuild=False)
    except TFLiteUnavailableError as error:
        raise OpenVINOUnavailableError(str(error)) from error
    if path in _failed_openvino:
        raise OpenVINOUnavailableError(_failed_openvino[path])
    try:
        record = _intact_record(path)
        if record is None:
            raise OpenVINOUnavailableError(
                f"The TFLite model {str(path)!r} changed while it was being loaded."
            )
        runtime = OpenVINORuntime(path)
        if verify:
            check, _ = _check(runtime, backbone, sample, record)
            if not check["passed"]:
                raise OpenVINOUnavailableError(
                    f"OpenVINO's features for backbone {backbone.spec.name!r} differ from "
                    f"TensorFlow's by up to {check['max_abs_difference']:.3g} (allowed: "
                    f"{TFLITE_ATOL:g} + {TFLITE_RTOL:g} * |feature|). Use runtime='tflite'."
                )
    except OpenVINOUnavailableError as error:
        _failed_openvino[path] = str(error)
        raise
    return runtime


def _choose(
    backbone: Backbone,
    runtime: RuntimeChoice,
    *,
    verify: bool,
    sample: npt.NDArray[np.float32] | None,
) -> FeatureRuntime:
    if runtime == "tensorflow":
        return TensorFlowRuntime(backbone)
    if runtime == "openvino" or (runtime == "auto" and openvino_available()):
        try:
            return _open_openvino(backbone, verify=verify, sample=sample)
        except OpenVINOUnavailableError as error:
            if runtime == "openvino":
                raise
            # TFLite is the next fastest; its own attempt warns if it fails too.
            _LOGGER.info("%s Trying TFLite.", error)
    try:
        return _open_tflite(backbone, verify=verify, sample=sample)
    except TFLiteUnavailableError as error:
        if runtime == "tflite":
            raise
        warnings.warn(str(error), UserWarning, stacklevel=3)
        return TensorFlowRuntime(backbone)


def select_runtime(
    backbone: Backbone,
    *,
    runtime: RuntimeChoice = "auto",
    verify: bool = True,
    sample: npt.NDArray[np.float32] | None = None,
    convert: bool = True,
) -> FeatureRuntime:
    """Chooses how to run a frozen backbone: the fastest runtime that is exact.

    The choice is kept per backbone object, so later calls are free.

    Args:
        backbone: A loaded backbone.
        runtime: ``"auto"``: OpenVINO if it is installed and passes the
            check, else TFLite if the conversion and the check succeed, else
            TensorFlow with a warning saying why. ``"openvino"`` or
            ``"tflite"``: that runtime or an error. ``"tensorflow"``:
            TensorFlow, no conversion.
        verify: Whether to check OpenVINO's or TFLite's features against
            TensorFlow's (``|runtime - tf| <= TFLITE_ATOL + TFLITE_RTOL *
            |tf|``) on a fixed seeded batch plus up to four images of
            ``sample``; the result is cached beside the model.
        sample: Optional preprocessed real images to include in the check.
        convert: With ``False``, ``"auto"`` uses TFLite only if the model is
            converted already, and otherwise TensorFlow without a warning
            (the conversion and check take ~10 s: too much for a few images).

    Returns:
        A :class:`FeatureRuntime`.

    Raises:
        TFLiteUnavailableError: With ``runtime="tflite"``, if the backbone
            cannot be converted, loaded or does not pass the check.
        OpenVINOUnavailableError: With ``runtime="openvino"``, if OpenVINO is
            not installed, or as for TFLite.
        InvalidParameterError: For an unknown ``runtime``.

    Example:
        >>> import hubtransfer
        >>> from hubtransfer._runtime import select_runtime
        >>> backbone = hubtransfer.load_backbone("efficientnet_lite0_embedded_fv")
        >>> select_runtime(backbone, runtime="tensorflow").name
        'tensorflow'
    """
    if runtime not in RUNTIME_CHOICES:
        raise InvalidParameterError(
            f"The 'runtime' parameter must be one of {', '.join(map(repr, RUNTIME_CHOICES))}. "
            f"Got {runtime!r} instead."
        )
    key = (runtime, bool(verify))
    with _selected_guard:
        chosen = _selected.get(backbone, {}).get(key)
    if chosen is not None:
        return chosen
    target = _tflite_path(backbone)
    if (
        runtime == "auto"
        and not convert
        and target not in _failed_conversions
        and _intact_record(target) is None
    ):
        # Not remembered under "auto": a later call may convert.
        return select_runtime(backbone, runtime="tensorflow")
    chosen = _choose(backbone, runtime, verify=verify, sample=sample)
    with _selected_guard:
        return _selected.setdefault(backbone, {}).setdefault(key, chosen)
