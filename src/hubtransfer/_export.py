"""Exporting a fitted classifier for serving: SavedModel, Keras or TensorFlow Lite.

:func:`export_model` writes one folder that holds the model, ``labels.txt``
(one class per line, in output order) and ``hubtransfer-export.json``, which
says exactly what the model takes and returns. The folder is built beside the
target and renamed into place, so a reader never sees half an export.

What goes in and out depends on the format:

* ``saved_model`` and ``keras``: ``images`` float32 ``[n, h, w, 3]``,
  preprocessed: resized and scaled to the backbone's preprocessing contract
  (what ``hubtransfer.Preprocessor`` returns and ``to_keras()`` takes: the
  TF-Hub convention). Out: ``probabilities`` float32 ``[n, classes]``.
* ``tflite`` (float32, float16, dynamic_int8): ``images`` float32
  ``[1, h, w, 3]``, RGB pixel values in ``[0, 255]``, resized; the contract's
  scaling is inside the model. Out: ``probabilities`` float32 ``[1, classes]``.
* ``tflite`` int8: ``images`` uint8 ``[1, h, w, 3]``, resized RGB pixels with
  scale 1 and zero point 0, so the image's bytes go in untouched. Out:
  ``probabilities`` uint8 ``[1, classes]``; ``probability = q / 256``.

Server formats keep the TF-Hub convention so that they drop in where a
``Preprocessor`` or ``to_keras()`` already feeds a model. TFLite models take
pixels because that is what a phone's camera pipeline has, and because a fully
integer model needs integer input: a uint8 image goes in untouched. In every
format the caller resizes to ``h x w`` (the contract names the method). The
sidecar records the input and output dtype, shape, range and quantisation as
read back from the written model.

Calibration: if the classifier has a fitted ``temperature_`` (see
:mod:`hubtransfer._calibration`), it is baked into the exported head (its
output layer's weights are divided by ``T``, which is ``softmax(logits / T)``)
unless ``calibrated=False``.

Quantisation (TFLite only): ``float16`` halves the weights; ``dynamic_int8``
stores weights as int8 and computes in float; ``int8`` makes every tensor
int8, calibrated on about 100 images from ``representative_data``, with uint8
input and output. TFLite metadata (``tflite-support``) is not written: its
only release (0.4.4) needs protobuf < 4, which TensorFlow 2.21 cannot use
(it needs protobuf >= 6.31), so the JSON sidecar and ``labels.txt`` carry it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ._cache import file_sha256
from ._data import IMAGE_EXTENSIONS
from ._exceptions import (
    DatasetError,
    ExportError,
    HubTransferError,
    InvalidParameterError,
    NotFittedError,
)
from ._folders import EXPORT_FOLDER, Protected, WriteRule, check_target, write_folder
from ._handles import redact_url
from ._preprocessing import Preprocessor
from ._spec import PreprocessingContract
from ._version import __version__

if TYPE_CHECKING:
    from ._classifier import TransferClassifier

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "EXPORT_LABELS",
    "EXPORT_METADATA",
    "ExportFormat",
    "Quantization",
    "export_model",
    "temperature_scaled_head",
]

ExportFormat = Literal["saved_model", "tflite", "keras"]
Quantization = Literal["float32", "float16", "dynamic_int8", "int8"]

_FORMATS: Final[tuple[ExportFormat, ...]] = ("saved_model", "tflite", "keras")
_QUANTIZATIONS: Final[tuple[Quantization, ...]] = ("float32", "float16", "dynamic_int8", "int8")

EXPORT_FORMAT: Final = "hubtransfer.export"
EXPORT_FORMAT_VERSION: Final = 1
EXPORT_METADATA: Final = "hubtransfer-export.json"
EXPORT_LABELS: Final = "labels.txt"
_TFLITE_FILE: Final = "model.tflite"
_REPRESENTATIVE_IMAGES: Final = 100
_REPRESENTATIVE_SEED: Final = 0
_PIXEL_RANGE: Final = (0.0, 255.0)
_DEPRECATION_MESSAGE: Final = r"(?s).*tf\.lite\.Interpreter is deprecated"


# --- Checking the request ---------------------------------------------------------------------


def _check_request(
    format: object, quantization: object, representative_data: object
) -> tuple[ExportFormat, Quantization]:
    if format not in _FORMATS:
        raise InvalidParameterError(
            f"The 'format' parameter of export_model must be one of {', '.join(_FORMATS)}. "
            f"Got {format!r} instead."
        )
    if quantization not in _QUANTIZATIONS:
        raise InvalidParameterError(
            f"The 'quantization' parameter of export_model must be one of "
            f"{', '.join(_QUANTIZATIONS)}. Got {quantization!r} instead."
        )
    if format != "tflite" and quantization != "float32":
        raise InvalidParameterError(
            f"quantization={quantization!r} applies to format='tflite' only; a {format} export "
            "is float32. Pass format='tflite', or leave quantization at 'float32'."
        )
    if quantization == "int8" and representative_data is None:
        raise InvalidParameterError(
            "quantization='int8' needs representative_data: a folder of typical images (the "
            "training folder is ideal) or a list of image paths, to calibrate the int8 ranges. "
            "Pass representative_data=..., or use quantization='dynamic_int8', which needs none."
        )
    if quantization != "int8" and representative_data is not None:
        raise InvalidParameterError(
            f"representative_data is used by quantization='int8' only; got quantization="
            f"{quantization!r}. Leave representative_data out, or pass quantization='int8'."
        )
    return format, quantization


def _check_classes(classes: Sequence[str]) -> list[str]:
    names = [str(c) for c in classes]
    for name in names:
        if "\n" in name or "\r" in name:
            raise ExportError(
                f"The class name {name!r} holds a line break, so labels.txt (one class per line) "
                "cannot represent it. Rename the class folder and fit again."
            )
    return names


def _temperature(model: TransferClassifier, calibrated: bool) -> float | None:
    if not isinstance(calibrated, bool):
        raise InvalidParameterError(
            f"The 'calibrated' parameter of export_model must be a bool. Got {calibrated!r} "
            "instead."
        )
    value = getattr(model, "temperature_", None) if calibrated else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidParameterError(
            f"The classifier's temperature_ is {value!r}; a temperature must be a float > 0. "
            "Fit the classifier again, or pass calibrated=False."
        )
    temperature = float(value)
    if not math.isfinite(temperature):
        raise InvalidParameterError(
            f"The classifier's temperature_ is {value!r}; it must be finite. Fit the "
            "classifier again, or pass calibrated=False."
        )
    return None if temperature == 1.0 else temperature


def _target(path: str | os.PathLike[str], model: TransferClassifier) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"The 'path' parameter of export_model must be a folder path. Got {path!r} instead."
        )
    check_target(path, _rule(model))
    return Path(path)


def _rule(model: TransferClassifier) -> WriteRule:
    backbone = model.__dict__.get("backbone_")
    protected = []
    if backbone is not None:
        protected.append(Protected(path=backbone.path, what="the model's backbone", inside=True))
    return WriteRule(kind=EXPORT_FOLDER, protected=protected, action="export to")


# --- The model to export ----------------------------------------------------------------------


def temperature_scaled_head(head: Any, temperature: float | None) -> Any:
    """The head, or a copy whose output layer computes ``softmax(logits / T)``.

    The copy's output layer has its kernel and bias divided by ``T``:
    ``softmax((x W + b) / T) == softmax(x (W / T) + b / T)``, so no new op is
    needed and the result converts (and quantises) like the head itself.

    Args:
        head: A ``tf_keras`` head ending in a softmax Dense layer (what
            :meth:`HeadTrainer.build_head` makes).
        temperature: ``T``, or None (or 1) for the head itself.

    Returns:
        ``head`` itself for no temperature, else a scaled copy.

    Raises:
        ExportError: If the head does not end in a softmax Dense layer.
    """
    if temperature is None or temperature == 1.0:
        return head
    import tf_keras

    output = head.layers[-1]
    if not (
        isinstance(output, tf_keras.layers.Dense)
        and output.activation is tf_keras.activations.softmax
    ):
        raise ExportError(
            f"The head's last layer ({output.name!r}) is not a softmax Dense layer, so the "
            "temperature cannot be folded into it. Pass calibrated=False."
        )
    copy = tf_keras.models.clone_model(head)
    copy.set_weights(head.get_weights())
    scaled = copy.layers[-1]
    # softmax((x W + b) / T) == softmax(x (W / T) + b / T): no new op, fine for int8 too.
    scaled.kernel.assign(scaled.kernel / temperature)
    if scaled.use_bias:
        scaled.bias.assign(scaled.bias / temperature)
    return copy


def _pixel_scaling(
    contract: PreprocessingContract,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per-channel ``(scale, offset)`` mapping 0-255 pixels to the contract's input."""
    low, high = contract.value_range
    mean = np.zeros(3) if contract.mean is None else np.asarray(contract.mean, np.float64)
    std = np.ones(3) if contract.std is None else np.asarray(contract.std, np.float64)
    scale = (high - low) / 255.0 / std
    offset = (low - mean) / std
    return scale.astype(np.float32), offset.astype(np.float32)


def _pixel_preprocessor(contract: PreprocessingContract) -> Preprocessor:
    """Resizes like the contract, but leaves pixels in [0, 255] (the TFLite input)."""
    return Preprocessor(
        dataclasses.replace(contract, value_range=_PIXEL_RANGE, mean=None, std=None)
    )


def _module(layer: Any, head: Any) -> Any:
    import tensorflow as tf

    module = tf.Module(name="hubtransfer_classifier")
    module.backbone = layer
    module.head = head
    return module


# --- Formats ----------------------------------------------------------------------------------


def _write_saved_model(folder: Path, layer: Any, head: Any, size: tuple[int, int]) -> None:
    import tensorflow as tf

    height, width = size
    spec = tf.TensorSpec([None, height, width, 3], tf.float32, name="images")
    module = _module(layer, head)

    def probabilities(images: Any) -> Any:
        return head(layer(images, training=False), training=False)

    # Reusable-SavedModel style: __call__ for tf.saved_model.load and hub.KerasLayer,
    # a named signature for TF Serving and saved_model_cli.
    call = tf.function(probabilities, input_signature=[spec], autograph=False)
    serving = tf.function(
        lambda images: {"probabilities": call(images)}, input_signature=[spec], autograph=False
    )
    module.__call__ = call
    module.serving = serving
    tf.saved_model.save(module, str(folder), signatures={"serving_default": serving})


def _write_keras(folder: Path, layer: Any, head: Any, size: tuple[int, int]) -> None:
    import tf_keras

    height, width = size
    inputs = tf_keras.Input((height, width, 3), name="images")
    model = tf_keras.Model(inputs, head(layer(inputs)), name="classifier")
    # The Keras 2 SavedModel form holds the backbone's graph and weights; H5 and .keras
    # would only record the hub.KerasLayer's handle, a path on this machine.
    tf_keras.models.save_model(model, str(folder), save_format="tf", include_optimizer=False)


def _convert_tflite(
    layer: Any,
    head: Any,
    contract: PreprocessingContract,
    quantization: Quantization,
    representative: npt.NDArray[np.float32] | None,
) -> bytes:
    import tensorflow as tf

    height, width = contract.input_size
    scale, offset = _pixel_scaling(contract)

    def probabilities(images: Any) -> Any:
        pixels = images * tf.constant(scale) + tf.constant(offset)
        return {"probabilities": head(layer(pixels, training=False), training=False)}

    forward = tf.function(
        probabilities,
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="images")],
        autograph=False,
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], _module(layer, head)
    )
    # Builtin ops only: select TF ops would need the Flex delegate on the device.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        assert representative is not None  # checked by _check_request
        samples = representative

        def dataset() -> Iterator[list[npt.NDArray[np.float32]]]:
            for sample in samples:
                yield [sample[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    model: bytes = converter.convert()
    return model


def _representative_images(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    contract: PreprocessingContract,
) -> npt.NDArray[np.float32]:
    """About 100 images (seeded sample) as the TFLite model takes them: pixels in [0, 255]."""
    if isinstance(data, (str, os.PathLike)):
        root = Path(data)
        if not root.is_dir():
            raise DatasetError(
                f"The representative_data folder {str(root)!r} does not exist or is not a "
                "folder. Pass the training folder or a list of image paths."
            )
        paths = sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        where = f"the folder {str(root)!r}"
    elif isinstance(data, Sequence) and not isinstance(data, (bytes, bytearray)):
        if not all(isinstance(p, (str, os.PathLike)) for p in data):
            raise InvalidParameterError(
                "The 'representative_data' parameter of export_model must be a folder or a "
                "sequence of image paths; the sequence holds other items."
            )
        paths = [Path(p) for p in data]
        where = "the representative_data list"
    else:
        raise InvalidParameterError(
            "The 'representative_data' parameter of export_model must be a folder or a sequence "
            f"of image paths. Got {type(data).__name__} instead."
        )
    if not paths:
        raise DatasetError(
            f"No images in {where} to calibrate the int8 model with. Pass the training folder."
        )
    order = np.random.default_rng(_REPRESENTATIVE_SEED).permutation(len(paths))
    chosen = [paths[i] for i in sorted(order[:_REPRESENTATIVE_IMAGES])]
    pixels = _pixel_preprocessor(contract).batch(chosen)
    # One pixel at 0 and one at 255 pin the input's calibrated range to [0, 255], so the
    # uint8 input has scale 1 and zero point 0: raw image bytes go in untouched.
    pixels[0, 0, 0, :] = 0.0
    pixels[0, 0, -1, :] = 255.0
    return pixels


def _interpreter(model: bytes) -> Any:
    try:
        interpreter_class = importlib.import_module("ai_edge_litert.interpreter").Interpreter
    except ImportError:
        import tensorflow as tf

        interpreter_class = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _DEPRECATION_MESSAGE, UserWarning)
        interpreter = interpreter_class(model_content=model)
    interpreter.allocate_tensors()
    return interpreter


def _quantization(details: dict[str, Any]) -> dict[str, float | int] | None:
    scale, zero_point = details.get("quantization", (0.0, 0))
    if not scale:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point)}


def _short_reason(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "is not supported" in line or "op is neither" in line]
    chosen = named[0] if named else (lines[0] if lines else type(error).__name__)
    return f"{type(error).__name__}: {chosen[:300]}"


# --- The sidecar ------------------------------------------------------------------------------


def _preprocessed_input(contract: PreprocessingContract) -> dict[str, Any]:
    height, width = contract.input_size
    steps = f"scaled to {list(contract.value_range)}"
    if contract.mean is not None:
        steps += f", then (x - {list(contract.mean)}) / {list(contract.std or ())} per channel"
    return {
        "name": "images",
        "dtype": "float32",
        "shape": [None, height, width, 3],
        "layout": "NHWC",
        "channels": "RGB",
        "range": None if contract.mean is not None else [float(v) for v in contract.value_range],
        "scaling": "by the caller",
        "quantization": None,
        "description": (
            f"RGB images resized to {height}x{width} ({contract.resize_method}), {steps}: "
            "the output of hubtransfer.Preprocessor for the preprocessing contract below."
        ),
    }


def _pixel_input(details: dict[str, Any], contract: PreprocessingContract) -> dict[str, Any]:
    height, width = contract.input_size
    dtype = np.dtype(details["dtype"]).name
    return {
        "name": "images",
        "dtype": dtype,
        "shape": [int(d) for d in details["shape"]],
        "layout": "NHWC",
        "channels": "RGB",
        "range": [0, 255] if dtype == "uint8" else [0.0, 255.0],
        "scaling": "in the model",
        "quantization": _quantization(details),
        "description": (
            f"One RGB image resized to {height}x{width} ({contract.resize_method}), pixel "
            f"values 0-255 as {dtype}; the model applies the preprocessing contract's scaling."
        ),
    }


def _output(
    dtype: str, shape: list[int | None], quantization: dict[str, float | int] | None
) -> dict[str, Any]:
    meaning = "class probabilities (softmax); column i is line i of labels.txt"
    if quantization is not None:
        meaning += (
            f"; dequantize with probability = {quantization['scale']:g} * "
            f"(q - {quantization['zero_point']})"
        )
    return {
        "name": "probabilities",
        "dtype": dtype,
        "shape": shape,
        "quantization": quantization,
        "description": meaning,
    }


# --- The entry point --------------------------------------------------------------------------


def export_model(
    model: TransferClassifier,
    path: str | os.PathLike[str],
    *,
    format: ExportFormat = "saved_model",
    quantization: Quantization = "float32",
    representative_data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    calibrated: bool = True,
) -> Path:
    """Writes a fitted classifier as a standalone model folder for serving.

    The folder holds the model (``saved_model``, ``keras``: the folder *is*
    the SavedModel; ``tflite``: ``model.tflite``), ``labels.txt`` and
    ``hubtransfer-export.json`` (format, versions, classes, the
    preprocessing contract, input and output dtype, shape, range and
    quantisation as read back from the model, the temperature, the
    backbone's name, handle and content hash, and a SHA-256 of every file).
    See the module documentation for each format's input.

    Loading the results:

    * ``saved_model``: ``tf.saved_model.load(path)(images)``, or the
      ``serving_default`` signature (``images`` → ``probabilities``), or
      ``hub.KerasLayer(path)``.
    * ``keras``: ``tf_keras.models.load_model(path)`` (no custom objects
      needed; it does not depend on the backbone's original files).
    * ``tflite``: ``tf.lite.Interpreter(model_path=path / "model.tflite")``
      (or LiteRT's), signature ``serving_default``.

    Args:
        model: A fitted :class:`~hubtransfer.TransferClassifier`.
        path: The folder to write. An existing export there is replaced once
            the new one is complete; any other non-empty folder is refused.
        format: ``"saved_model"``, ``"keras"`` or ``"tflite"``.
        quantization: TFLite only: ``"float32"``, ``"float16"``,
            ``"dynamic_int8"`` or ``"int8"`` (full integer, uint8 in and out).
        representative_data: For ``"int8"`` only: a folder (searched
            recursively) or a list of image paths; a seeded sample of 100
            of them calibrates the int8 ranges. The training folder is ideal.
        calibrated: Bake the classifier's ``temperature_`` (if it has one)
            into the exported probabilities.

    Returns:
        The folder.

    Raises:
        NotFittedError: If the classifier is not fitted.
        InvalidParameterError: For a bad format, quantization, path, or a
            representative_data that does not fit the quantization.
        DatasetError: If ``representative_data`` holds no images.
        ImageDecodeError: If a representative image cannot be decoded.
        ExportError: If TensorFlow cannot convert or save the model (the
            message says which step and why).

    Example:
        >>> import hubtransfer
        >>> model = hubtransfer.TransferClassifier().fit("photos/")  # doctest: +SKIP
        >>> hubtransfer.export_model(model, "export/flowers-tflite", format="tflite",
        ...     quantization="int8", representative_data="photos/")  # doctest: +SKIP
        PosixPath('export/flowers-tflite')
    """
    chosen_format, chosen_quantization = _check_request(format, quantization, representative_data)
    if not hasattr(model, "trainer_"):
        raise NotFittedError(
            "This TransferClassifier is not fitted yet, so there is nothing to export. Call "
            "fit(...) or TransferClassifier.load(path) first."
        )
    temperature = _temperature(model, calibrated)
    target = _target(path, model)
    classes = _check_classes(model.classes_.tolist())
    backbone = model.backbone_
    contract = backbone.spec.preprocessing
    representative = (
        _representative_images(representative_data, contract)
        if representative_data is not None
        else None
    )
    head = temperature_scaled_head(model.trainer_.head_, temperature)

    def write(temporary: Path) -> None:
        description = _write_model(
            temporary,
            chosen_format,
            chosen_quantization,
            backbone.layer,
            head,
            contract,
            representative,
            backbone_name=backbone.spec.name,
        )
        (temporary / EXPORT_LABELS).write_text(
            "".join(f"{name}\n" for name in classes), encoding="utf8"
        )
        files = sorted(p for p in temporary.rglob("*") if p.is_file())
        metadata = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "hubtransfer_version": __version__,
            "export_format": chosen_format,
            "quantization": chosen_quantization,
            **description,
            "classes": classes,
            "labels_file": EXPORT_LABELS,
            "calibrated": temperature is not None,
            "temperature": temperature,
            "preprocessing": contract.to_json(),
            "backbone": {
                "name": backbone.spec.name,
                "handle": redact_url(backbone.spec.handle),
                "content_hash": backbone.content_hash,
                "licence": backbone.spec.licence,
            },
            "files": {p.relative_to(temporary).as_posix(): file_sha256(p) for p in files},
        }
        with open(temporary / EXPORT_METADATA, "w", encoding="utf8") as handle:
            json.dump(metadata, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())

    write_folder(target, write, _rule(model))
    return target


def _write_model(
    folder: Path,
    format: ExportFormat,
    quantization: Quantization,
    layer: Any,
    head: Any,
    contract: PreprocessingContract,
    representative: npt.NDArray[np.float32] | None,
    *,
    backbone_name: str,
) -> dict[str, Any]:
    """Writes the model into ``folder``; returns the sidecar's model, input and output entries."""
    n_classes = int(head.output_shape[-1])
    size = contract.input_size
    try:
        if format == "saved_model":
            _write_saved_model(folder, layer, head, size)
        elif format == "keras":
            _write_keras(folder, layer, head, size)
        else:
            model = _convert_tflite(layer, head, contract, quantization, representative)
    except HubTransferError:
        raise
    except Exception as error:
        step = "convert it to TensorFlow Lite" if format == "tflite" else f"save it as {format}"
        advice = (
            "Try quantization='dynamic_int8' or 'float32', or format='saved_model'."
            if format == "tflite"
            else "Check the disk space and the folder's permissions."
        )
        raise ExportError(
            f"Exporting the classifier on backbone {backbone_name!r}: TensorFlow could not "
            f"{step} ({_short_reason(error)}). {advice}"
        ) from error
    if format != "tflite":
        loading = (
            "tf.saved_model.load(folder)(images), or its 'serving_default' signature"
            if format == "saved_model"
            else "tf_keras.models.load_model(folder)(images)"
        )
        return {
            "model": ".",
            "signature": "serving_default",
            "loading": loading,
            "input": _preprocessed_input(contract),
            "output": _output("float32", [None, n_classes], None),
        }
    (folder / _TFLITE_FILE).write_bytes(model)
    interpreter = _interpreter(model)
    [input_details] = interpreter.get_input_details()
    [output_details] = interpreter.get_output_details()
    return {
        "model": _TFLITE_FILE,
        "signature": "serving_default",
        "loading": f"tf.lite.Interpreter(model_path=folder / {_TFLITE_FILE!r}), or LiteRT's",
        "input": _pixel_input(input_details, contract),
        "output": _output(
            np.dtype(output_details["dtype"]).name,
            [int(d) for d in output_details["shape"]],
            _quantization(output_details),
        ),
    }
