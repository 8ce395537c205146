"""Preparing images the way a backbone expects: decode, RGB, resize, scale.

A :class:`Preprocessor` applies a :class:`~hubtransfer.PreprocessingContract`.
Its per-image path is plain TensorFlow ops, so it runs inside
``tf.data.Dataset.map`` and inside a model; :meth:`Preprocessor.batch` and
:meth:`Preprocessor.dataset` wrap it for file paths, bytes and arrays.

The steps, in order:

1. **Decode** JPEG, PNG, GIF or BMP (``tf.io.decode_image``). GIF and
   animated PNG give their first frame; 16-bit PNG is scaled to 8 bits by the
   decoder; palette PNG/GIF are expanded through their palette (a transparent
   palette entry gives the colour stored for it); CMYK and YCCK JPEGs are
   converted to RGB. The **EXIF orientation** of a JPEG (or a PNG's ``eXIf``
   chunk) is applied, so a phone photo stored sideways is seen upright, as
   Pillow's ``ImageOps.exif_transpose`` and every photo viewer show it
   (TensorFlow's decoders and Keras' loaders ignore it).
   :meth:`~Preprocessor.load`, :meth:`~Preprocessor.batch` and
   :meth:`~Preprocessor.dataset` read it in Python with each file's header
   check; :meth:`~Preprocessor.decode` parses it from the file's first 64 KiB
   with TensorFlow ops, so your own ``tf.data`` pipelines see photos upright
   too. Images over :data:`DEFAULT_MAX_PIXELS` pixels are refused before they
   are decoded: their size is read from the header, so a small file that would
   expand to gigabytes (a decompression bomb) never allocates them. Pass
   ``max_pixels=`` to :class:`Preprocessor` to change the limit.
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
   averages instead. Integer pixels are resized before they are converted to
   float, so a large image's full-size copy stays one byte per value rather
   than four. Results are clipped to ``[0, 1]`` because bicubic
   interpolation overshoots.
4. **Scale** ``[0, 1]`` to the contract's ``value_range``, then
   ``(x - mean) / std`` per channel if the contract gives them.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

# IMAGE_EXTENSIONS lives in the TensorFlow-free _data module (folder scanning needs it
# without TF); it is re-exported here beside the decoders it describes.
from ._cache import UnchangedFileMemo
from ._data import IMAGE_EXTENSIONS
from ._exceptions import ImageDecodeError, InvalidParameterError
from ._files import (
    SpecialFileError,
    max_file_bytes,
    open_regular,
    read_regular,
    read_regular_prefix,
)
from ._lazy import tensorflow as tf
from ._spec import BackboneSpec, PreprocessingContract

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "ImageInput", "Preprocessor"]

#: One image for :meth:`Preprocessor.batch`: a path, encoded bytes or an array.
ImageInput: TypeAlias = "str | os.PathLike[str] | bytes | bytearray | npt.NDArray[Any]"

# Enough for a BMP's headers and a full 256-entry colour table.
_HEADER_BYTES: Final = 2048
_ADVICE: Final = "Convert it to JPEG or PNG, or leave it out."
_LISTED_PROBLEMS: Final = 20
_PIXEL_SCALES: Final = {"uint8": 255.0, "uint16": 65535.0}
_WITHIN_RANGE_METHODS: Final = frozenset({"bilinear", "nearest"})
"""Resize methods whose outputs lie between the input pixels' extremes (no overshoot)."""
# 32-bit BMP channel masks TensorFlow's decoder assumes (BGRA in memory).
_STANDARD_BMP_MASKS: Final = (
    (0x00FF0000).to_bytes(4, "little")
    + (0x0000FF00).to_bytes(4, "little")
    + (0x000000FF).to_bytes(4, "little")
)


DEFAULT_MAX_PIXELS: Final = 89_478_485
"""Images with more pixels are refused before decoding (Pillow's ``MAX_IMAGE_PIXELS``).

A 89.5-megapixel RGB image takes 268 MB once decoded; a few decoded in
parallel are what a training machine can spare. An animated GIF counts the
pixels of all its frames, because TensorFlow's GIF decoder reads every frame.
"""

# The window the EXIF orientation is looked for in, by the TensorFlow and the
# Python parsers alike (they must agree): Exif comes first in a JPEG, and its
# first directory, which holds the orientation, comes first in the Exif block.
_EXIF_WINDOW: Final = 1 << 16
_EXIF_SEGMENTS: Final = 64
_EXIF_ENTRIES: Final = 256
_ORIENTATION_TAG: Final = 0x0112
# Markers and chunks walked while reading a header, at most (a guard against loops).
_HEADER_STEPS: Final = 100_000
_JPEG_SOF_MARKERS: Final = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_COLOURS: Final = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}

_Reader: TypeAlias = "Callable[[int, int], bytes]"


@dataclass(frozen=True, slots=True, kw_only=True)
class _ImageInfo:
    """What an image's header says, read without decoding its pixels.

    ``width``/``height`` are ``None`` when the header is too damaged to say;
    the decoder then decides. ``pixels`` is what decoding allocates for (all
    frames of a GIF). ``colour`` is one of ``grey``, ``grey+alpha``, ``RGB``,
    ``RGBA``, ``palette``, ``CMYK``, ``YCCK`` or ``N-channel``.
    """

    format: str
    width: int | None
    height: int | None
    colour: str
    bit_depth: int
    frames: int = 1
    pixels: int | None = None
    transparency: bool = False
    orientation: int = 1


def _bytes_reader(data: bytes) -> _Reader:
    return lambda offset, size: data[offset : offset + size]


def _stream_reader(stream: BinaryIO) -> _Reader:
    def read(offset: int, size: int) -> bytes:
        stream.seek(offset)
        return stream.read(size)

    return read


def _inspect(read: _Reader, *, orientation: bool = True) -> _ImageInfo | None:
    """Reads an image's header: size, colours, frames, EXIF orientation.

    Returns ``None`` for data that is not a JPEG, PNG, GIF or BMP. Never
    raises on malformed data: it reports what it could read.
    """
    head = read(0, 32)
    if head.startswith(b"\xff\xd8\xff"):
        info = _inspect_jpeg(read)
    elif head.startswith(_PNG_SIGNATURE):
        info = _inspect_png(read)
    elif head.startswith(b"GIF8"):
        info = _inspect_gif(read)
    elif head.startswith(b"BM"):
        info = _inspect_bmp(head)
    else:
        return None
    if orientation and info.format in ("JPEG", "PNG"):
        info = replace(info, orientation=_orientation_of(read(0, _EXIF_WINDOW)))
    return info


def _area(width: int | None, height: int | None) -> int | None:
    return None if width is None or height is None else width * height


def _inspect_jpeg(read: _Reader) -> _ImageInfo:
    position = 2
    width = height = None
    components, precision, transform = 3, 8, -1
    for _ in range(_HEADER_STEPS):
        segment = read(position, 4)
        if len(segment) < 2 or segment[0] != 0xFF:
            break
        marker = segment[1]
        if marker == 0xFF:  # a fill byte before the marker
            position += 1
            continue
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            position += 2
            continue
        if len(segment) < 4 or marker in (0xD9, 0xDA):
            break
        length = int.from_bytes(segment[2:4], "big")
        if length < 2:
            break
        if marker in _JPEG_SOF_MARKERS:
            frame = read(position + 4, 6)
            if len(frame) == 6:
                precision = frame[0]
                height = int.from_bytes(frame[1:3], "big")
                width = int.from_bytes(frame[3:5], "big")
                components = frame[5]
            break
        if marker == 0xEE:
            adobe = read(position + 4, 12)
            if adobe.startswith(b"Adobe") and len(adobe) == 12:
                transform = adobe[11]
        position += 2 + length
    if components == 4:
        colour = "YCCK" if transform == 2 else "CMYK"
    else:
        colour = {1: "grey", 3: "RGB"}.get(components, f"{components}-channel")
    return _ImageInfo(
        format="JPEG",
        width=width,
        height=height,
        colour=colour,
        bit_depth=precision,
        pixels=_area(width, height),
    )


def _inspect_png(read: _Reader) -> _ImageInfo:
    header = read(8, 25)
    if len(header) < 25 or header[4:8] != b"IHDR":
        return _ImageInfo(format="PNG", width=None, height=None, colour="RGB", bit_depth=8)
    width = int.from_bytes(header[8:12], "big")
    height = int.from_bytes(header[12:16], "big")
    depth, colour_type = header[16], header[17]
    frames, transparency = 1, colour_type in (4, 6)
    position = 8 + 25
    for _ in range(_HEADER_STEPS):
        chunk = read(position, 12)
        if len(chunk) < 8 or chunk[4:8] in (b"IDAT", b"IEND"):
            break
        if chunk[4:8] == b"tRNS":
            transparency = True
        elif chunk[4:8] == b"acTL" and len(chunk) == 12:
            frames = max(1, int.from_bytes(chunk[8:12], "big"))
        position += 12 + int.from_bytes(chunk[:4], "big")
    return _ImageInfo(
        format="PNG",
        width=width,
        height=height,
        colour=_PNG_COLOURS.get(colour_type, f"colour type {colour_type}"),
        bit_depth=depth,
        frames=frames,
        # TensorFlow's PNG decoder reads the default image only, not the other frames.
        pixels=width * height,
        transparency=transparency,
    )


def _skip_sub_blocks(read: _Reader, position: int) -> int | None:
    """The position after a GIF's chain of data sub-blocks, or ``None`` at the end of data."""
    for _ in range(_HEADER_STEPS * 100):
        size = read(position, 1)
        if not size:
            return None
        position += 1 + size[0]
        if size[0] == 0:
            return position
    return None


def _inspect_gif(read: _Reader) -> _ImageInfo:
    header = read(0, 13)
    if len(header) < 13:
        return _ImageInfo(format="GIF", width=None, height=None, colour="palette", bit_depth=8)
    width = int.from_bytes(header[6:8], "little")
    height = int.from_bytes(header[8:10], "little")
    position: int | None = 13
    if header[10] & 0x80:
        position = 13 + 3 * (2 << (header[10] & 7))
    frames = frame_pixels = 0
    transparency = False
    for _ in range(_HEADER_STEPS):
        if position is None:
            break
        block = read(position, 10)
        if not block or block[0] == 0x3B:
            break
        if block[0] == 0x2C and len(block) == 10:
            frames += 1
            frame_pixels += int.from_bytes(block[5:7], "little") * int.from_bytes(
                block[7:9], "little"
            )
            table = 3 * (2 << (block[9] & 7)) if block[9] & 0x80 else 0
            # After the descriptor and colour table: the LZW code size, then the data.
            position = _skip_sub_blocks(read, position + 10 + table + 1)
        elif block[0] == 0x21 and len(block) >= 2:
            # Only the first frame is decoded, so only its transparency matters.
            if block[1] == 0xF9 and len(block) >= 4 and frames == 0:
                transparency = bool(block[3] & 1)
            position = _skip_sub_blocks(read, position + 2)
        else:
            break
    return _ImageInfo(
        format="GIF",
        width=width,
        height=height,
        colour="palette",
        bit_depth=8,
        frames=max(frames, 1),
        pixels=max(width * height, frame_pixels),
        transparency=transparency,
    )


def _inspect_bmp(header: bytes) -> _ImageInfo:
    if len(header) < 30:
        return _ImageInfo(format="BMP", width=None, height=None, colour="RGB", bit_depth=8)
    width = int.from_bytes(header[18:22], "little", signed=True)
    # A negative height means the rows are stored top-down.
    height = abs(int.from_bytes(header[22:26], "little", signed=True))
    bits = int.from_bytes(header[28:30], "little")
    colour = {8: "grey", 24: "RGB", 32: "RGB"}.get(bits, "palette" if bits < 8 else "RGB")
    return _ImageInfo(
        format="BMP",
        width=width,
        height=height,
        colour=colour,
        bit_depth=8,
        pixels=abs(width) * height,
    )


def _orientation_of(window: bytes) -> int:
    """The EXIF orientation (1 to 8) in a file's first bytes; 1 if there is none.

    Mirrors :func:`_orientation_tensor` step for step: the two must agree.
    """
    size = len(window)

    def byte(index: int) -> int:
        return window[index] if 0 <= index < size else 0

    tiff = -1
    if window.startswith(b"\xff\xd8"):
        position = 2
        for _ in range(_EXIF_SEGMENTS):
            if position + 4 > size or byte(position) != 0xFF:
                break
            marker = byte(position + 1)
            if marker == 0xFF:
                position += 1
                continue
            if 0xD0 <= marker <= 0xD8 or marker == 0x01:
                position += 2
                continue
            length = byte(position + 2) * 256 + byte(position + 3)
            if marker in (0xD9, 0xDA) or length < 2:
                break
            if (
                marker == 0xE1
                and position + 10 <= size
                and window[position + 4 : position + 10] == b"Exif\x00\x00"
            ):
                tiff = position + 10
                break
            position += 2 + length
    elif window.startswith(_PNG_SIGNATURE):
        position = 8
        for _ in range(_EXIF_SEGMENTS):
            if position + 8 > size:
                break
            kind = window[position + 4 : position + 8]
            if kind == b"eXIf":
                tiff = position + 8
                break
            if kind in (b"IDAT", b"IEND"):
                break
            position += 12 + int.from_bytes(window[position : position + 4], "big")
    if tiff < 0:
        return 1
    if window[tiff : tiff + 2] == b"II":
        order: Literal["little", "big"] = "little"
    elif window[tiff : tiff + 2] == b"MM":
        order = "big"
    else:
        return 1

    def number(index: int, width: int) -> int:
        return int.from_bytes(bytes(byte(index + i) for i in range(width)), order)

    if number(tiff + 2, 2) != 42:
        return 1
    directory = tiff + number(tiff + 4, 4)
    for entry_index in range(min(number(directory, 2), _EXIF_ENTRIES)):
        entry = directory + 2 + 12 * entry_index
        if entry + 12 > size:
            break
        if number(entry, 2) == _ORIENTATION_TAG:
            value = number(entry + 8, 4 if number(entry + 2, 2) == 4 else 2)
            return value if 1 <= value <= 8 else 1
    return 1


def _pixel_problem(info: _ImageInfo | None, max_pixels: int | None) -> str | None:
    """Why an image is refused before decoding (over the pixel limit, 12-bit), or ``None``."""
    if info is None:
        return None
    if info.format == "JPEG" and info.bit_depth != 8:
        return (
            f"is a {info.bit_depth}-bit JPEG; TensorFlow decodes 8-bit JPEGs only. Convert it "
            "to an 8-bit JPEG or a PNG"
        )
    if max_pixels is None or info.pixels is None or info.pixels <= max_pixels:
        return None
    size = f"{info.width:,} x {info.height:,} pixels"
    if info.format == "GIF" and info.frames > 1:
        size = (
            f"{info.frames:,} frames of up to {size}, {info.pixels:,} pixels in all "
            "(TensorFlow's GIF decoder reads every frame)"
        )
    else:
        size = f"{size} = {info.pixels:,} pixels"
    return (
        f"has {size}, more than the limit of {max_pixels:,} that guards against "
        f"decompression bombs. Downscale it, or raise the limit: max_pixels="
        f"{_round_up(info.pixels):_} or more (None turns the check off)"
    )


def _round_up(pixels: int) -> int:
    step: int = 10 ** max(len(str(pixels)) - 2, 0)
    return -(-pixels // step) * step


# The TensorFlow side: the same header reading, as graph ops for tf.data -----------


def _byte_reader(encoded: Any, window: int) -> tuple[Any, Any]:
    """A function reading bytes (as int64) of the first ``window`` bytes, zeros beyond."""
    raw = tf.io.decode_raw(tf.strings.substr(encoded, 0, window), tf.uint8)
    size = tf.cast(tf.shape(raw)[0], tf.int64)
    padded = tf.concat([raw, tf.zeros([16], tf.uint8)], 0)

    def byte(index: Any) -> Any:
        position = tf.convert_to_tensor(index, tf.int64)
        return tf.cast(tf.gather(padded, tf.clip_by_value(position, 0, size + 15)), tf.int64)

    return byte, size


def _orientation_tensor(encoded: Any) -> Any:
    """The EXIF orientation of an encoded JPEG or PNG as an int64 scalar tensor (1 to 8).

    Mirrors :func:`_orientation_of` step for step.
    """
    byte, size = _byte_reader(encoded, _EXIF_WINDOW)
    minus_one = tf.constant(-1, tf.int64)
    six = tf.range(6, dtype=tf.int64)

    def jpeg_step(position: Any, tiff: Any, done: Any) -> tuple[Any, Any, Any]:
        marker = byte(position + 1)
        valid = (position + 4 <= size) & tf.equal(byte(position), 0xFF)
        fill = tf.equal(marker, 0xFF)
        standalone = ((marker >= 0xD0) & (marker <= 0xD8)) | tf.equal(marker, 0x01)
        length = byte(position + 2) * 256 + byte(position + 3)
        segment = valid & ~fill & ~standalone
        end = tf.equal(marker, 0xD9) | tf.equal(marker, 0xDA) | (length < 2)
        exif = (
            tf.equal(marker, 0xE1)
            & (position + 10 <= size)
            & _equals(byte(position + 4 + six), b"Exif\x00\x00")
        )
        found = segment & ~end & exif
        step = tf.where(
            fill,
            tf.constant(1, tf.int64),
            tf.where(standalone, tf.constant(2, tf.int64), 2 + length),
        )
        return (
            position + step,
            tf.where(found, position + 10, tiff),
            ~valid | (segment & end) | found,
        )

    def png_step(position: Any, tiff: Any, done: Any) -> tuple[Any, Any, Any]:
        valid = position + 8 <= size
        kind = byte(position + 4 + tf.range(4, dtype=tf.int64))
        found = valid & _equals(kind, b"eXIf")
        end = _equals(kind, b"IDAT") | _equals(kind, b"IEND")
        length = _big_endian(byte, position, 4)
        return (
            position + 12 + length,
            tf.where(found, position + 8, tiff),
            ~valid | found | end,
        )

    def walk(step: Any, start: int) -> Any:
        _, tiff, _ = tf.while_loop(
            lambda position, tiff, done: ~done,
            step,
            (tf.constant(start, tf.int64), minus_one, tf.constant(False)),
            maximum_iterations=_EXIF_SEGMENTS,
        )
        return tiff

    is_jpeg = tf.equal(byte(0), 0xFF) & tf.equal(byte(1), 0xD8)
    is_png = _equals(byte(tf.range(8, dtype=tf.int64)), _PNG_SIGNATURE)
    tiff = tf.cond(
        is_jpeg,
        lambda: walk(jpeg_step, 2),
        lambda: tf.cond(is_png, lambda: walk(png_step, 8), lambda: minus_one),
    )
    little = tf.equal(byte(tiff), 0x49) & tf.equal(byte(tiff + 1), 0x49)
    big = tf.equal(byte(tiff), 0x4D) & tf.equal(byte(tiff + 1), 0x4D)

    def number(index: Any, width: int) -> Any:
        return tf.where(little, _little_endian(byte, index, width), _big_endian(byte, index, width))

    valid = (tiff >= 0) & (little | big) & tf.equal(number(tiff + 2, 2), 42)
    directory = tiff + number(tiff + 4, 4)
    count = tf.minimum(number(directory, 2), _EXIF_ENTRIES)
    indexes = tf.range(_EXIF_ENTRIES, dtype=tf.int64)
    entries = directory + 2 + 12 * indexes
    matches = (indexes < count) & (entries + 12 <= size)
    matches &= tf.equal(number(entries, 2), _ORIENTATION_TAG)
    entry = tf.gather(entries, tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int64))
    value = tf.where(tf.equal(number(entry + 2, 2), 4), number(entry + 8, 4), number(entry + 8, 2))
    found = valid & tf.reduce_any(matches) & (value >= 1) & (value <= 8)
    return tf.where(found, value, tf.constant(1, tf.int64))


def _equals(values: Any, expected: bytes) -> Any:
    return tf.reduce_all(tf.equal(values, tf.constant(list(expected), tf.int64)))


def _big_endian(byte: Any, index: Any, width: int) -> Any:
    value = byte(index)
    for offset in range(1, width):
        value = value * 256 + byte(index + offset)
    return value


def _little_endian(byte: Any, index: Any, width: int) -> Any:
    value = byte(index + width - 1)
    for offset in range(width - 2, -1, -1):
        value = value * 256 + byte(index + offset)
    return value


def _oriented(image: Any, orientation: Any) -> Any:
    """Turns an ``[H, W, C]`` image upright, following an EXIF orientation 1 to 8.

    ``orientation`` is a tensor, or the Python int 1 for images known to be
    upright (no op is added: the switch costs ~0.4 ms per image in a pipeline).
    """
    if isinstance(orientation, int) and orientation == 1:
        return image

    def transposed() -> Any:
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,
        lambda: tf.reverse(image, [1]),  # 2: mirrored left-right
        lambda: tf.reverse(image, [0, 1]),  # 3: upside down
        lambda: tf.reverse(image, [0]),  # 4: mirrored top-bottom
        transposed,  # 5: mirrored along the main diagonal
        lambda: tf.reverse(transposed(), [1]),  # 6: to be turned 90° clockwise
        lambda: tf.reverse(transposed(), [0, 1]),  # 7: mirrored along the other diagonal
        lambda: tf.reverse(transposed(), [0]),  # 8: to be turned 90° anticlockwise
    ]
    return tf.switch_case(tf.cast(orientation - 1, tf.int32), branches)


def _pixel_limit_check(encoded: Any, max_pixels: int) -> Any:
    """An assertion op failing for images over ``max_pixels``, read from the header."""
    byte, _ = _byte_reader(encoded, 32)
    is_jpeg = tf.equal(byte(0), 0xFF) & tf.equal(byte(1), 0xD8) & tf.equal(byte(2), 0xFF)
    is_png = tf.equal(byte(0), 0x89) & tf.equal(byte(1), ord("P"))
    is_gif = tf.equal(byte(0), ord("G")) & tf.equal(byte(1), ord("I"))
    is_bmp = tf.equal(byte(0), ord("B")) & tf.equal(byte(1), ord("M"))

    def signed(value: Any) -> Any:
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    header_pixels = tf.where(
        is_png,
        _big_endian(byte, 16, 4) * _big_endian(byte, 20, 4),
        tf.where(
            is_gif,
            _little_endian(byte, 6, 2) * _little_endian(byte, 8, 2),
            tf.where(
                is_bmp,
                signed(_little_endian(byte, 18, 4)) * signed(_little_endian(byte, 22, 4)),
                tf.constant(0, tf.int64),
            ),
        ),
    )

    def jpeg_pixels() -> Any:
        shape = tf.image.extract_jpeg_shape(encoded, output_type=tf.int64)
        return shape[0] * shape[1]

    pixels = tf.cond(is_jpeg, jpeg_pixels, lambda: header_pixels)
    return tf.debugging.assert_less_equal(
        pixels,
        tf.constant(max_pixels, tf.int64),
        message=(
            f"The image has more pixels than the limit of {max_pixels:,} that guards against "
            "decompression bombs. Downscale it, or raise the limit with "
            "Preprocessor(contract, max_pixels=...) (None turns the check off). Its pixels:"
        ),
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
        if limit is None:
            return read_regular(source), None
        return read_regular_prefix(source, limit), None
    except FileNotFoundError:
        return None, "does not exist"
    except IsADirectoryError:
        return None, "is a folder, not an image file"
    except SpecialFileError as error:
        return None, str(error.strerror)
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
        max_pixels: Images with more pixels (width x height; all frames of
            a GIF) are refused with :class:`~hubtransfer.ImageDecodeError`
            before they are decoded. ``None`` turns the check off.

    Raises:
        InvalidParameterError: If ``contract`` is not a contract or
            ``max_pixels`` is not a positive int or ``None``.

    Example:
        >>> import numpy as np, hubtransfer
        >>> contract = hubtransfer.PreprocessingContract(input_size=(4, 4), value_range=(-1.0, 1.0))
        >>> preprocessor = hubtransfer.Preprocessor(contract)
        >>> white = np.full((8, 6), 255, np.uint8)
        >>> batch = preprocessor.batch([white, white[..., None]])
        >>> batch.shape, batch.dtype, float(batch.min()), float(batch.max())
        ((2, 4, 4, 3), dtype('float32'), 1.0, 1.0)
    """

    __slots__ = ("_contract", "_encoded_function", "_max_pixels", "_pixel_functions")

    def __init__(
        self,
        contract: PreprocessingContract,
        *,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        if not isinstance(contract, PreprocessingContract):
            raise InvalidParameterError(
                f"The 'contract' parameter of Preprocessor must be a PreprocessingContract. "
                f"Got {contract!r} instead; use Preprocessor.from_spec(spec) for a backbone."
            )
        self._contract = contract
        self._max_pixels = _max_pixels_argument(max_pixels, "Preprocessor")
        self._encoded_function: Any = None
        self._pixel_functions: dict[tuple[str, int], Any] = {}

    @classmethod
    def from_spec(
        cls, spec: BackboneSpec, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
    ) -> Preprocessor:
        """The preprocessor of a backbone (``Preprocessor(spec.preprocessing)``).

        Args:
            spec: The backbone's spec.
            max_pixels: See :class:`Preprocessor`.

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
        return cls(spec.preprocessing, max_pixels=max_pixels)

    @property
    def contract(self) -> PreprocessingContract:
        """The contract this preprocessor follows."""
        return self._contract

    @property
    def max_pixels(self) -> int | None:
        """The most pixels an image may have (``None``: no limit)."""
        return self._max_pixels

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Shape of one preprocessed image: ``(height, width, 3)``."""
        height, width = self._contract.input_size
        return (height, width, 3)

    def __repr__(self) -> str:
        limit = (
            "" if self._max_pixels == DEFAULT_MAX_PIXELS else f", max_pixels={self._max_pixels!r}"
        )
        return f"Preprocessor({self._contract!r}{limit})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Preprocessor):
            return NotImplemented
        return (self._contract, self._max_pixels) == (other._contract, other._max_pixels)

    def __hash__(self) -> int:
        return hash((self._contract, self._max_pixels))

    def __reduce__(self) -> tuple[Any, ...]:
        # The traced tf.functions cannot be pickled; they are rebuilt on demand.
        return (_rebuild, (self._contract, self._max_pixels))

    # The TensorFlow path ----------------------------------------------------

    def decode(self, encoded: Any) -> Any:
        """Decodes one JPEG, PNG, GIF or BMP into uint8 RGB pixels.

        TensorFlow ops only, so it works in ``tf.data`` and ``tf.function``.
        The EXIF orientation is applied (the image comes out upright) and the
        pixel limit is checked from the header before decoding. It cannot
        check a palette BMP's colour table (it decodes to wrong colours) or
        count a GIF's frames; :meth:`load`, :meth:`batch` and :meth:`dataset`
        reject such files before they get here, naming them.

        Args:
            encoded: A scalar ``tf.string`` tensor (or bytes): the file's contents.

        Returns:
            A ``uint8`` tensor ``[H, W, 3]``: upright, grey expanded, alpha
            dropped, first frame of an animation, 16-bit PNG scaled to 8 bits.

        Raises:
            tf.errors.InvalidArgumentError: When run on bytes that are not a
                decodable image, or on an image over :attr:`max_pixels`.

        Example:
            >>> import tensorflow as tf, hubtransfer
            >>> preprocessor = hubtransfer.Preprocessor(
            ...     hubtransfer.PreprocessingContract(input_size=(2, 2)))
            >>> png = tf.io.encode_png(tf.fill([3, 5, 1], tf.constant(7, tf.uint8)))
            >>> preprocessor.decode(png).shape
            TensorShape([3, 5, 3])
        """
        return self._decode(encoded)

    def _decode(self, encoded: Any, orientation: Any = None, *, channels: int = 3) -> Any:
        """:meth:`decode`, given the orientation if the header was read in Python.

        The library's own paths read each file's header in Python (about
        15 µs: orientation and pixel limit), which is much cheaper than the
        same in TensorFlow ops (about 1 ms per image), so with ``orientation``
        given neither is done again here. ``channels=0`` keeps the file's own
        channels (1 to 4).
        """
        encoded = tf.convert_to_tensor(encoded, tf.string)
        checks = []
        if orientation is None and self._max_pixels is not None:
            checks.append(_pixel_limit_check(encoded, self._max_pixels))
        with tf.control_dependencies(checks):
            image = tf.io.decode_image(
                encoded, channels=channels, expand_animations=False, dtype=tf.uint8
            )
        if orientation is None:
            orientation = _orientation_tensor(encoded)
        return _oriented(image, orientation)

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
        if scale is None:
            pixels = tf.cast(pixels, tf.float32)
        contract = self._contract
        # Integer pixels are resized as they are (the resize ops take them and give float32):
        # a float32 copy of a large image would take four times its memory.
        pixels = tf.image.resize(pixels, contract.input_size, method=contract.resize_method)
        pixels = tf.cast(_to_rgb(pixels), tf.float32)
        if scale is not None:
            pixels = pixels / scale
        # Each of these elementwise ops costs about as much per image as the resize, so
        # the ones that cannot change a value are left out (tested bit for bit):
        # interpolating integer pixels without overshoot keeps them within 0 to `scale`.
        if scale is None or contract.resize_method not in _WITHIN_RANGE_METHODS:
            pixels = tf.clip_by_value(pixels, 0.0, 1.0)
        low, high = contract.value_range
        if (low, high) != (0.0, 1.0):
            pixels = pixels * float(high - low) + float(low)
        if contract.mean is not None and contract.std is not None:
            mean = tf.constant(contract.mean, tf.float32)
            std = tf.constant(contract.std, tf.float32)
            pixels = (pixels - mean) / std
        return pixels

    # The Python path --------------------------------------------------------

    def load(self, path: str | os.PathLike[str]) -> Any:
        """Reads, decodes and preprocesses one image file.

        The format is recognised from the file's first bytes, not its name; the
        EXIF orientation is applied.

        Returns:
            A ``float32`` tensor ``[h, w, 3]``.

        Raises:
            ImageDecodeError: If the file is missing, unreadable, not a
                decodable JPEG, PNG, GIF or BMP, or over :attr:`max_pixels`
                (the message names it and the way out).
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
                image or are over :attr:`max_pixels` (named, with its position).
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
        elif not isinstance(images, Iterable):
            raise InvalidParameterError(
                f"Preprocessor.batch takes a list of images. Got {images!r} of type "
                f"{type(images).__name__} instead."
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

        Every file's header is checked up front (it exists, is a JPEG, PNG,
        GIF or supported BMP, and has at most :attr:`max_pixels` pixels),
        because a bad file inside the pipeline only surfaces later as a bare
        TensorFlow ``InvalidArgumentError`` without the file's name; the same
        pass reads each file's EXIF orientation. A file that passes the check
        but is damaged further in still fails that way: decode every file
        first with :func:`hubtransfer.find_bad_images` (what
        ``TransferClassifier.fit`` does) to rule that out.

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
            ImageDecodeError: Listing every file that is missing, not a
                decodable image or over the pixel limit.
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
        orientations = self._check_files(files)
        upright = all(turn == 1 for turn in orientations)

        def load(path: Any, orientation: Any) -> Any:
            return self(self._decode(tf.io.read_file(path), 1 if upright else orientation))

        encoded = tf.constant([os.fsencode(source) for source in files], dtype=tf.string)
        turns = tf.constant(orientations, dtype=tf.int64, shape=[len(files)])
        if label_array is None:
            data = tf.data.Dataset.from_tensor_slices((encoded, turns)).map(
                load, num_parallel_calls=parallel, deterministic=True
            )
        else:
            data = tf.data.Dataset.from_tensor_slices((encoded, turns, label_array)).map(
                lambda path, orientation, label: (load(path, orientation), label),
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

    def _file_problems(self, files: Sequence[str]) -> list[tuple[str | None, int]]:
        """Each file's problem judged from its header (``None`` if none), and EXIF orientation."""
        return [_file_problem(source, self._max_pixels) for source in files]

    def _tolerant_dataset(
        self,
        files: Sequence[str],
        orientations: Sequence[int],
        *,
        batch_size: int,
        num_parallel_calls: int | None = None,
    ) -> tf.data.Dataset:
        """Batches of ``(positions, images)`` that leave out the files that fail to decode.

        For extraction that must not stop at a bad file: a file that fails
        inside the pipeline is dropped there (``ignore_errors``); the
        positions (into ``files``) say which images a batch holds. Check the
        headers first (:meth:`_file_problems`), as :meth:`dataset` does.
        """
        parallel = num_parallel_calls or os.cpu_count() or 1
        upright = all(turn == 1 for turn in orientations)

        def load(position: Any, path: Any, orientation: Any) -> Any:
            image = self._decode(tf.io.read_file(path), 1 if upright else orientation)
            return position, self(image)

        data = (
            tf.data.Dataset.from_tensor_slices(
                (
                    tf.range(len(files), dtype=tf.int64),
                    tf.constant([os.fsencode(source) for source in files], dtype=tf.string),
                    tf.constant(list(orientations), dtype=tf.int64, shape=[len(files)]),
                )
            )
            .map(load, num_parallel_calls=parallel, deterministic=True)
            .ignore_errors()
            .batch(batch_size)
            .prefetch(2)
        )
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
        info = _inspect(_bytes_reader(data))
        problem = _pixel_problem(info, self._max_pixels)
        if problem is not None:
            raise ImageDecodeError(f"{source} {problem}.")
        if self._encoded_function is None:
            self._encoded_function = tf.function(
                lambda encoded, orientation: self(self._decode(encoded, orientation)),
                input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int64)],
                autograph=False,
            )
        orientation = 1 if info is None else info.orientation
        try:
            return self._encoded_function(
                tf.constant(data, dtype=tf.string), tf.constant(orientation, tf.int64)
            )
        except tf.errors.OpError as error:
            reason = _op_error_reason(error)
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

    def _check_files(self, files: Sequence[str]) -> list[int]:
        """Checks every file's header; returns each file's EXIF orientation."""
        problems: list[str] = []
        orientations: list[int] = []
        for source in files:
            problem, orientation = _file_problem(source, self._max_pixels)
            orientations.append(orientation)
            if problem is not None:
                problems.append(f"  {source!r} {problem}")
        if not problems:
            return orientations
        shown = problems[:_LISTED_PROBLEMS]
        if len(problems) > _LISTED_PROBLEMS:
            shown.append(f"  ... and {len(problems) - _LISTED_PROBLEMS} more")
        raise ImageDecodeError(
            f"{len(problems)} of {len(files)} files cannot be used as images:\n"
            + "\n".join(shown)
            + "\nReplace them (JPEG or PNG), or leave them out; `hubtransfer check DATA_DIR` "
            "lists every problem in a data folder and can write a cleaned copy."
        )


def _op_error_reason(error: Exception) -> str:
    """The first line of a TensorFlow error, without its ``{{function_node ...}}`` prefix."""
    text = str(getattr(error, "message", "") or error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return re.sub(r"^(\{\{[^}]*\}\}\s*)+", "", first).strip().rstrip(".") or first


def _rebuild(contract: PreprocessingContract, max_pixels: int | None) -> Preprocessor:
    return Preprocessor(contract, max_pixels=max_pixels)


def _max_pixels_argument(value: object, owner: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(
            f"The 'max_pixels' parameter of {owner} must be a positive int, or None for no "
            f"limit. Got {value!r} instead."
        )
    return int(value)


_file_checks: Final[UnchangedFileMemo[tuple[str | None, int]]] = UnchangedFileMemo()


def _file_problem(source: str, max_pixels: int | None) -> tuple[str | None, int]:
    """Why a file cannot be decoded, judged from its header (``None`` if it looks
    fine), and its EXIF orientation; remembered while the file is unchanged."""
    try:
        return _file_checks.get(
            source, lambda path: _read_file_problem(path, max_pixels), max_pixels
        )
    except OSError:  # cannot even be examined: the reading names why
        return _read_file_problem(source, max_pixels)


def _read_file_problem(source: str, max_pixels: int | None) -> tuple[str | None, int]:
    try:
        # A regular file within the size limit: a FIFO or a link to /dev/zero named x.png
        # would otherwise block or flood the pipeline that reads it next.
        with open_regular(source, limit=max_file_bytes()) as stream:
            problem = _header_problem(stream.read(_HEADER_BYTES))
            if problem is not None:
                return problem, 1
            info = _inspect(_stream_reader(stream))
            return _pixel_problem(info, max_pixels), 1 if info is None else info.orientation
    except FileNotFoundError:
        return "does not exist", 1
    except IsADirectoryError:
        return "is a folder, not an image file", 1
    except SpecialFileError as error:
        return str(error.strerror), 1
    except OSError as error:
        return f"cannot be read ({error.strerror or error})", 1


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
