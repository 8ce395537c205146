"""Preparing images the way a backbone expects: decode, RGB, resize, scale.

A :class:`Preprocessor` applies a :class:`~hubtransfer.PreprocessingContract`.
Its per-image path is plain TensorFlow ops, so it runs inside
``tf.data.Dataset.map`` and inside a model; :meth:`Preprocessor.batch` and
:meth:`Preprocessor.dataset` wrap it for file paths, bytes and arrays.

The steps, in order:

1. **Decode** JPEG, PNG, GIF or BMP (``tf.io.decode_image``). GIF and
   animated PNG give their first frame; 16-bit PNG is scaled to 8 bits by the
   decoder; palette PNG/GIF are expanded through their palette.
2. **RGB**: grey (and grey + alpha) is repeated into three channels. Alpha is
   *dropped*, not composited: this is what ``tf.io.decode_image(channels=3)``,
   Keras' ``image_dataset_from_directory`` and Pillow's ``convert("RGB")`` do,
   so features match models trained through those pipelines. Composite
   transparent images onto a background yourself if that matters.
3. **Resize** the whole image to the contract's ``input_size`` (no crop, the
   aspect ratio is not kept: Keras' default) with ``tf.image.resize`` and
   its ``resize_method``, without anti-aliasing (TensorFlow's default, what
   TF-Hub models were evaluated with, and three times cheaper than the
   anti-aliased kernel on CPU). For heavy downscaling, ``resize_method="area"``
   averages instead. Results are clipped to ``[0, 1]`` because bicubic
   interpolation overshoots.
4. **Scale** ``[0, 1]`` to the contract's ``value_range``, then
   ``(x - mean) / std`` per channel if the contract gives them.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

# IMAGE_EXTENSIONS lives in the TensorFlow-free _data module (folder scanning needs it
# without TF); it is re-exported here beside the decoders it describes.
from ._data import IMAGE_EXTENSIONS
from ._exceptions import ImageDecodeError, InvalidParameterError
from ._lazy import tensorflow as tf
from ._spec import BackboneSpec, PreprocessingContract

__all__ = ["IMAGE_EXTENSIONS", "ImageInput", "Preprocessor"]

#: One image for :meth:`Preprocessor.batch`: a path, encoded bytes or an array.
ImageInput: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | npt.NDArray[Any]"

# Enough for a BMP's headers and a full 256-entry colour table.
_HEADER_BYTES: Final = 2048
_ADVICE: Final = "Convert it to JPEG or PNG, or leave it out."
_LISTED_PROBLEMS: Final = 20
_PIXEL_SCALES: Final = {"uint8": 255.0, "uint16": 65535.0}
# 32-bit BMP channel masks TensorFlow's decoder assumes (BGRA in memory).
_STANDARD_BMP_MASKS: Final = (
    (0x00FF0000).to_bytes(4, "little")
    + (0x0000FF00).to_bytes(4, "little")
    + (0x000000FF).to_bytes(4, "little")
)


def _header_problem(header: bytes) -> str | None:
    """Why these first bytes are not an image TensorFlow decodes, or ``None``."""
    if not header:
        return "is empty (0 bytes)"
    if header.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8")):
        return None
    if header.startswith(b"BM"):
        return _bmp_problem(header)
    return f"is not a JPEG, PNG, GIF or BMP image ({_describe_bytes(header)})"


def _bmp_problem(header: bytes) -> str | None:
    if len(header) < 34:
        return "is a truncated BMP (its header is incomplete)"
    dib_size = int.from_bytes(header[14:18], "little")
    bits = int.from_bytes(header[28:30], "little")
    compression = int.from_bytes(header[30:34], "little")
    if dib_size < 40:
        return f"is an OS/2 BMP ({dib_size}-byte header), which TensorFlow cannot decode"
    if bits == 24 and compression == 0:
        return None
    if bits == 32 and (compression == 0 or header[54:66] == _STANDARD_BMP_MASKS):
        return None
    if bits == 8 and compression == 0:
        colours = int.from_bytes(header[46:50], "little") or 256
        table = header[14 + dib_size : 14 + dib_size + 4 * colours]
        grey = len(table) == 4 * colours and all(
            table[4 * i : 4 * i + 3] == bytes((i, i, i)) for i in range(colours)
        )
        if grey:
            return None
        # TensorFlow reads the colour indexes as grey levels: wrong pixels, no error.
        return (
            "is a palette BMP (8 bits per pixel with a colour table), which TensorFlow "
            "would decode to wrong colours"
        )
    return (
        f"is a {bits}-bit BMP (compression {compression}); TensorFlow decodes 24- and 32-bit "
        "and 8-bit greyscale BMPs only"
    )


def _describe_bytes(header: bytes) -> str:
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "it is WebP"
    if header[:4] in (b"II*\x00", b"MM\x00*"):
        return "it is TIFF"
    if header[4:8] == b"ftyp":
        return f"it is an ISO media file, brand {header[8:12].decode('latin-1')!r} (HEIC/AVIF?)"
    if header.startswith(b"%PDF"):
        return "it is a PDF"
    try:
        # An incremental decoder tolerates a character cut off at the end.
        text = codecs.getincrementaldecoder("utf-8")().decode(header[:40])
    except UnicodeDecodeError:
        text = ""
    if text.strip() and all(c.isprintable() or c.isspace() for c in text):
        return f"it looks like text: {text[:30]!r}"
    return "it starts with bytes " + header[:8].hex(" ")


def _read(source: str, limit: int | None) -> tuple[bytes, None] | tuple[None, str]:
    """The file's bytes (the first ``limit`` of them), or the reason it cannot be read."""
    try:
        with open(source, "rb") as stream:
            return (stream.read() if limit is None else stream.read(limit)), None
    except FileNotFoundError:
        return None, "does not exist"
    except IsADirectoryError:
        return None, "is a folder, not an image file"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"


def _path_string(path: object, where: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"{where} must be a file path (str or os.PathLike). Got {path!r} of type "
            f"{type(path).__name__} instead."
        )
    text = os.fspath(path)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    return text


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(
            f"The {name!r} parameter of Preprocessor.dataset must be a positive int. Got "
            f"{value!r} instead."
        )
    return int(value)


def _to_rgb(image: Any) -> Any:
    """uint8/float ``[..., C]`` with C in 1 to 4 → ``[..., 3]``; alpha is dropped."""
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels == 4:
        return image[..., :3]
    if channels in (1, 2):
        grey = image[..., :1]
        return tf.concat([grey, grey, grey], axis=-1)
    if channels is not None:
        raise InvalidParameterError(
            f"Images must have 1, 2, 3 or 4 channels (grey, grey + alpha, RGB, RGBA). Got "
            f"shape {image.shape}."
        )
    count = tf.shape(image)[-1]
    checked = tf.debugging.assert_less_equal(
        count, 4, message="Images must have 1, 2, 3 or 4 channels."
    )
    with tf.control_dependencies([checked]):
        rgb = tf.cond(
            count < 3,
            lambda: tf.concat([image[..., :1]] * 3, axis=-1),
            lambda: image[..., :3],
        )
    return tf.ensure_shape(rgb, image.shape[:-1].concatenate([3]))


class Preprocessor:
    """Decodes, resizes and normalises images following a preprocessing contract.

    Args:
        contract: The :class:`~hubtransfer.PreprocessingContract` to follow
            (a backbone's ``spec.preprocessing``).

    Example:
        >>> import numpy as np, hubtransfer
        >>> contract = hubtransfer.PreprocessingContract(input_size=(4, 4), value_range=(-1.0, 1.0))
        >>> preprocessor = hubtransfer.Preprocessor(contract)
        >>> white = np.full((8, 6), 255, np.uint8)
        >>> batch = preprocessor.batch([white, white[..., None]])
        >>> batch.shape, batch.dtype, float(batch.min()), float(batch.max())
        ((2, 4, 4, 3), dtype('float32'), 1.0, 1.0)
    """

    __slots__ = ("_contract", "_encoded_function", "_pixel_functions")

    def __init__(self, contract: PreprocessingContract) -> None:
        if not isinstance(contract, PreprocessingContract):
            raise InvalidParameterError(
                f"The 'contract' parameter of Preprocessor must be a PreprocessingContract. "
                f"Got {contract!r} instead; use Preprocessor.from_spec(spec) for a backbone."
            )
        self._contract = contract
        self._encoded_function: Any = None
        self._pixel_functions: dict[tuple[str, int], Any] = {}

    @classmethod
    def from_spec(cls, spec: BackboneSpec) -> Preprocessor:
        """The preprocessor of a backbone (``Preprocessor(spec.preprocessing)``).

        Example:
            >>> import hubtransfer
            >>> spec = hubtransfer.BackboneSpec(
            ...     name="my_fv", handle="/models/my_fv", input_size=(96, 96),
            ...     output_kind="feature_vector", feature_dim=64)
            >>> hubtransfer.Preprocessor.from_spec(spec).output_shape
            (96, 96, 3)
        """
        if not isinstance(spec, BackboneSpec):
            raise InvalidParameterError(
                f"The 'spec' parameter of Preprocessor.from_spec must be a BackboneSpec. Got "
                f"{spec!r} instead."
            )
        return cls(spec.preprocessing)

    @property
    def contract(self) -> PreprocessingContract:
        """The contract this preprocessor follows."""
        return self._contract

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Shape of one preprocessed image: ``(height, width, 3)``."""
        height, width = self._contract.input_size
        return (height, width, 3)

    def __repr__(self) -> str:
        return f"Preprocessor({self._contract!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Preprocessor):
            return NotImplemented
        return self._contract == other._contract

    def __hash__(self) -> int:
        return hash(self._contract)

    def __reduce__(self) -> tuple[Any, ...]:
        # The traced tf.functions cannot be pickled; they are rebuilt on demand.
        return (Preprocessor, (self._contract,))

    # The TensorFlow path ----------------------------------------------------

    def decode(self, encoded: Any) -> Any:
        """Decodes one JPEG, PNG, GIF or BMP into uint8 RGB pixels.

        TensorFlow ops only, so it works in ``tf.data`` and ``tf.function``.
        It cannot check a palette BMP's colour table (it decodes to wrong
        colours); :meth:`load`, :meth:`batch` and :meth:`dataset` reject such
        files before they get here.

        Args:
            encoded: A scalar ``tf.string`` tensor (or bytes): the file's contents.

        Returns:
            A ``uint8`` tensor ``[H, W, 3]``: grey expanded, alpha dropped,
            first frame of an animation, 16-bit PNG scaled to 8 bits.

        Raises:
            tf.errors.InvalidArgumentError: When run on bytes that are not a
                decodable image.

        Example:
            >>> import tensorflow as tf, hubtransfer
            >>> preprocessor = hubtransfer.Preprocessor(
            ...     hubtransfer.PreprocessingContract(input_size=(2, 2)))
            >>> png = tf.io.encode_png(tf.fill([3, 5, 1], tf.constant(7, tf.uint8)))
            >>> preprocessor.decode(png).shape
            TensorShape([3, 5, 3])
        """
        return tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)

    def __call__(self, image: Any) -> Any:
        """Converts decoded pixels into the backbone's input.

        Args:
            image: ``[H, W, C]`` or a batch ``[N, H, W, C]`` with C = 1 (grey),
                2 (grey + alpha), 3 (RGB) or 4 (RGBA); ``uint8`` (0-255),
                ``uint16`` (0-65535) or float (already in ``[0, 1]``). A
                tensor or anything ``tf.convert_to_tensor`` accepts.

        Returns:
            ``float32`` ``[h, w, 3]`` (or ``[N, h, w, 3]``) following the
            contract.

        Raises:
            InvalidParameterError: For a rank other than 3 or 4, an
                unsupported dtype or a channel count outside 1 to 4.

        Example:
            >>> import tensorflow as tf, hubtransfer
            >>> preprocessor = hubtransfer.Preprocessor(
            ...     hubtransfer.PreprocessingContract(input_size=(224, 224)))
            >>> paths = tf.data.Dataset.from_tensor_slices(["a.jpg", "b.png"])
            >>> images = paths.map(lambda path: preprocessor(
            ...     preprocessor.decode(tf.io.read_file(path))))
            >>> images.element_spec
            TensorSpec(shape=(224, 224, 3), dtype=tf.float32, name=None)
        """
        pixels = tf.convert_to_tensor(image)
        if pixels.shape.rank not in (3, 4):
            raise InvalidParameterError(
                f"A Preprocessor takes one image [H, W, C] or a batch [N, H, W, C]. Got a "
                f"tensor of shape {pixels.shape}; add a channel axis to [H, W] images."
            )
        dtype = pixels.dtype
        scale = _PIXEL_SCALES.get(dtype.name)
        if scale is None and not dtype.is_floating:
            raise InvalidParameterError(
                f"A Preprocessor takes uint8 (0-255), uint16 (0-65535) or float (0-1) pixels. "
                f"Got dtype {dtype.name}; cast 0-255 values with tf.cast(image, tf.uint8)."
            )
        pixels = tf.cast(_to_rgb(pixels), tf.float32)
        if scale is not None:
            pixels = pixels / scale
        contract = self._contract
        pixels = tf.image.resize(pixels, contract.input_size, method=contract.resize_method)
        pixels = tf.clip_by_value(pixels, 0.0, 1.0)
        low, high = contract.value_range
        pixels = pixels * float(high - low) + float(low)
        if contract.mean is not None and contract.std is not None:
            mean = tf.constant(contract.mean, tf.float32)
            std = tf.constant(contract.std, tf.float32)
            pixels = (pixels - mean) / std
        return pixels

    # The Python path --------------------------------------------------------

    def load(self, path: str | os.PathLike[str]) -> Any:
        """Reads, decodes and preprocesses one image file.

        The format is recognised from the file's first bytes, not its name.

        Returns:
            A ``float32`` tensor ``[h, w, 3]``.

        Raises:
            ImageDecodeError: If the file is missing, unreadable or not a
                decodable JPEG, PNG, GIF or BMP (the message names it).
        """
        source = _path_string(path, "The 'path' parameter of Preprocessor.load")
        data, problem = _read(source, None)
        if data is None:
            raise ImageDecodeError(f"The image file {source!r} {problem}. Check the path.")
        return self._preprocess_encoded(data, f"The image file {source!r}")

    def batch(self, images: Iterable[ImageInput]) -> npt.NDArray[np.float32]:
        """Preprocesses a list of images of any sizes into one array.

        Args:
            images: File paths, encoded bytes (JPEG/PNG/GIF/BMP) and numpy
                arrays, mixed freely. Arrays are ``[H, W]`` or ``[H, W, C]``
                with C in 1 to 4, ``uint8`` (0-255), ``uint16`` (0-65535) or
                float (must already be in ``[0, 1]``: float 0-255 data is
                rejected rather than silently saturated). A 4-D array is
                taken as a list of images.

        Returns:
            ``float32`` ``[N, h, w, 3]``, in input order (``[0, h, w, 3]`` for
            no images).

        Raises:
            ImageDecodeError: For a file or bytes that are not a decodable
                image (named, with its position).
            InvalidParameterError: For an array of the wrong dtype, shape or
                range, or an unsupported item (with its position).

        Example:
            >>> import numpy as np, hubtransfer
            >>> preprocessor = hubtransfer.Preprocessor(
            ...     hubtransfer.PreprocessingContract(input_size=(8, 8)))
            >>> rgba = np.zeros((20, 10, 4), np.uint8)
            >>> preprocessor.batch([rgba, np.ones((3, 3), np.float32)]).shape
            (2, 8, 8, 3)
        """
        if isinstance(images, np.ndarray):
            if images.ndim != 4:
                raise InvalidParameterError(
                    f"Preprocessor.batch takes a list of images (or a 4-D array). Got an array "
                    f"of shape {images.shape}; for one image pass [image]."
                )
        elif isinstance(images, (str, bytes, os.PathLike)):
            raise InvalidParameterError(
                f"Preprocessor.batch takes a list of images. Got {type(images).__name__} "
                f"{_shorten(images)}; for one image pass [image], or use Preprocessor.load."
            )
        outputs = [self._preprocess_item(image, position) for position, image in enumerate(images)]
        if not outputs:
            return np.zeros((0, *self.output_shape), np.float32)
        return np.stack(outputs).astype(np.float32, copy=False)

    def dataset(
        self,
        paths: Sequence[str | os.PathLike[str]],
        labels: Sequence[int] | None = None,
        *,
        batch_size: int = 32,
        num_parallel_calls: int | None = None,
        prefetch: int = 2,
    ) -> tf.data.Dataset:
        """A ``tf.data`` pipeline of preprocessed batches, in the order given.

        Files are read, decoded and preprocessed in parallel, batched and
        prefetched. TensorFlow's autotuning is off (it can stall for tens of
        seconds when an iterator is torn down) and the parallelism is
        explicit; the order is deterministic.

        Every file is checked up front (it exists and its first bytes are a
        JPEG, PNG, GIF or supported BMP), because a bad file inside the
        pipeline only surfaces later as a bare TensorFlow
        ``InvalidArgumentError`` without the file's name. A file that passes
        the check but is damaged further in still fails that way.

        Args:
            paths: Image files.
            labels: Optional integer label per file; the dataset then yields
                ``(images, labels)`` with ``int32`` labels.
            batch_size: Images per batch (the last one may be smaller).
            num_parallel_calls: Files decoded in parallel; default
                ``os.cpu_count()``.
            prefetch: Batches prepared ahead (0 for none).

        Returns:
            A dataset of ``float32`` ``[b, h, w, 3]`` batches, or of
            ``(images, labels)`` pairs.

        Raises:
            ImageDecodeError: Listing every file that is missing or not a
                decodable image.
            InvalidParameterError: For bad parameters or a labels list of the
                wrong length.

        Example:
            >>> import hubtransfer
            >>> preprocessor = hubtransfer.Preprocessor(
            ...     hubtransfer.PreprocessingContract(input_size=(224, 224)))
            >>> data = preprocessor.dataset(paths, labels)  # doctest: +SKIP
            >>> for images, labels in data:  # doctest: +SKIP
            ...     print(images.shape, labels.shape)
            (32, 224, 224, 3) (32,)
        """
        if isinstance(paths, (str, bytes, os.PathLike)):
            raise InvalidParameterError(
                f"The 'paths' parameter of Preprocessor.dataset must be a sequence of paths. "
                f"Got {_shorten(paths)}; for one file pass [path]."
            )
        files = [
            _path_string(path, f"The 'paths' parameter of Preprocessor.dataset: item {position}")
            for position, path in enumerate(paths)
        ]
        batch_size = _positive_int(batch_size, "batch_size")
        parallel = (
            os.cpu_count() or 1
            if num_parallel_calls is None
            else _positive_int(num_parallel_calls, "num_parallel_calls")
        )
        if (
            isinstance(prefetch, bool)
            or not isinstance(prefetch, (int, np.integer))
            or prefetch < 0
        ):
            raise InvalidParameterError(
                f"The 'prefetch' parameter of Preprocessor.dataset must be a non-negative int. "
                f"Got {prefetch!r} instead."
            )
        label_array = None if labels is None else _check_labels(labels, len(files))
        self._check_files(files)

        def load(path: Any) -> Any:
            return self(self.decode(tf.io.read_file(path)))

        encoded = tf.constant([os.fsencode(source) for source in files], dtype=tf.string)
        if label_array is None:
            data = tf.data.Dataset.from_tensor_slices(encoded).map(
                load, num_parallel_calls=parallel, deterministic=True
            )
        else:
            data = tf.data.Dataset.from_tensor_slices((encoded, label_array)).map(
                lambda path, label: (load(path), label),
                num_parallel_calls=parallel,
                deterministic=True,
            )
        data = data.batch(batch_size)
        if prefetch:
            data = data.prefetch(int(prefetch))
        options = tf.data.Options()
        options.autotune.enabled = False
        options.deterministic = True
        return data.with_options(options)

    # Helpers ----------------------------------------------------------------

    def _preprocess_item(self, image: object, position: int) -> npt.NDArray[np.float32]:
        if isinstance(image, (str, os.PathLike)):
            result = self.load(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            result = self._preprocess_encoded(data, f"images[{position}] ({len(data)} bytes)")
        elif isinstance(image, np.ndarray):
            pixels = _check_array(image, position)
            result = self._pixel_function(pixels.dtype.name, pixels.shape[-1])(pixels)
        else:
            hint = (
                " Convert a PIL image with numpy.asarray(image)."
                if type(image).__module__.startswith("PIL")
                else " Convert a tensor with tensor.numpy(), or call the preprocessor on it."
                if isinstance(image, tf.Tensor)
                else ""
            )
            raise InvalidParameterError(
                f"images[{position}] is a {type(image).__name__}; Preprocessor.batch takes file "
                f"paths, encoded bytes or numpy arrays.{hint}"
            )
        output: npt.NDArray[np.float32] = result.numpy()
        return output

    def _preprocess_encoded(self, data: bytes, source: str) -> Any:
        problem = _header_problem(data[:_HEADER_BYTES])
        if problem is not None:
            raise ImageDecodeError(f"{source} {problem}. {_ADVICE}")
        if self._encoded_function is None:
            self._encoded_function = tf.function(
                lambda encoded: self(self.decode(encoded)),
                input_signature=[tf.TensorSpec([], tf.string)],
                autograph=False,
            )
        try:
            return self._encoded_function(tf.constant(data, dtype=tf.string))
        except tf.errors.OpError as error:
            reason = (error.message or str(error)).strip().splitlines()[0]
            raise ImageDecodeError(
                f"{source} could not be decoded ({reason}); it is probably truncated or "
                f"damaged. {_ADVICE}"
            ) from error

    def _pixel_function(self, dtype: str, channels: int) -> Any:
        key = (dtype, channels)
        function = self._pixel_functions.get(key)
        if function is None:
            function = tf.function(
                self.__call__,
                input_signature=[tf.TensorSpec([None, None, channels], tf.as_dtype(dtype))],
                autograph=False,
            )
            self._pixel_functions[key] = function
        return function

    def _check_files(self, files: Sequence[str]) -> None:
        problems: list[str] = []
        for source in files:
            header, problem = _read(source, _HEADER_BYTES)
            if header is not None:
                problem = _header_problem(header)
            if problem is not None:
                problems.append(f"  {source!r} {problem}")
        if not problems:
            return
        shown = problems[:_LISTED_PROBLEMS]
        if len(problems) > _LISTED_PROBLEMS:
            shown.append(f"  ... and {len(problems) - _LISTED_PROBLEMS} more")
        raise ImageDecodeError(
            f"{len(problems)} of {len(files)} files cannot be used as images:\n"
            + "\n".join(shown)
            + "\nConvert them to JPEG or PNG, or leave them out."
        )


def _check_array(array: npt.NDArray[Any], position: int) -> npt.NDArray[Any]:
    shape = array.shape
    pixels = array[..., np.newaxis] if array.ndim == 2 else array
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4) or 0 in pixels.shape[:2]:
        raise InvalidParameterError(
            f"images[{position}] has shape {shape}; arrays must be [H, W] or [H, W, C] with C "
            "= 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) and H, W at least 1. Pass a "
            "batch [N, H, W, C] as list(array)."
        )
    if pixels.dtype.name in _PIXEL_SCALES:
        return pixels
    if pixels.dtype.kind == "f":
        pixels = pixels.astype(np.float32, copy=False)
        low, high = float(np.min(pixels)), float(np.max(pixels))
        if not (low >= 0.0 and high <= 1.0):
            raise InvalidParameterError(
                f"images[{position}] is a float array with values in [{low:g}, {high:g}]; "
                "float images must be in [0, 1]. Pass uint8 (0-255) pixels, or divide by 255."
            )
        return pixels
    raise InvalidParameterError(
        f"images[{position}] has dtype {pixels.dtype}; arrays must be uint8 (0-255), uint16 "
        "(0-65535) or float (0-1). Convert 0-255 integers with array.astype(numpy.uint8)."
    )


def _check_labels(labels: Sequence[int], count: int) -> npt.NDArray[np.int32]:
    values = np.asarray(labels)
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        raise InvalidParameterError(
            f"The 'labels' parameter of Preprocessor.dataset must be a sequence of ints. Got "
            f"{_shorten(labels)} instead."
        )
    if len(values) != count:
        raise InvalidParameterError(
            f"The 'labels' parameter of Preprocessor.dataset has {len(values)} labels for "
            f"{count} paths; give one label per path."
        )
    if values.size and (
        values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max
    ):
        raise InvalidParameterError(
            "The 'labels' parameter of Preprocessor.dataset holds values outside int32."
        )
    return values.astype(np.int32)


def _shorten(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
