"""Property tests for decoding: any bytes give a well-formed batch or an ImageDecodeError.

Never another exception, never a crash: the header is read in Python (size, frames,
orientation) before TensorFlow's decoders see the bytes, and both must hold up
against anything a folder of downloads can contain.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from hubtransfer import ImageDecodeError, PreprocessingContract, Preprocessor
from hubtransfer._preprocessing import _bytes_reader, _inspect, _orientation_of, _orientation_tensor

SIZE = (8, 6)
UNIT = Preprocessor(PreprocessingContract(input_size=SIZE))
SIGNED = Preprocessor(PreprocessingContract(input_size=SIZE, value_range=(-1.0, 1.0)))
# Small enough that random headers often claim too many pixels, so that path is fuzzed too.
LIMITED = Preprocessor(PreprocessingContract(input_size=SIZE), max_pixels=64 * 64)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"BM"]


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def assert_batch_or_decode_error(preprocessor: Preprocessor, data: bytes) -> None:
    try:
        batch = preprocessor.batch([data])
    except ImageDecodeError as error:
        assert "images[0]" in str(error)
        return
    assert batch.shape == (1, *SIZE, 3)
    assert batch.dtype == np.float32
    low, high = preprocessor.contract.value_range
    assert np.all(np.isfinite(batch))
    assert batch.min() >= low and batch.max() <= high


def seed_images() -> list[bytes]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [image, Image.fromarray(pixels[::-1])]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    return [
        encode(image, "JPEG", quality=90),
        encode(image, "JPEG", quality=90, exif=exif.tobytes()),
        encode(image, "JPEG", progressive=True),
        encode(image, "PNG"),
        encode(image.convert("P"), "PNG", transparency=3),
        encode(image.convert("L"), "PNG", exif=exif.tobytes()),
        encode(image, "BMP"),
        encode(image.convert("P"), "GIF"),
        animated.getvalue(),
    ]


SEEDS = seed_images()


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    assert_batch_or_decode_error(UNIT, data)


@FUZZ
@given(signature=st.sampled_from(SIGNATURES), tail=st.binary(max_size=1024))
def test_random_bytes_behind_an_image_signature(signature: bytes, tail: bytes) -> None:
    for preprocessor in (UNIT, LIMITED):
        assert_batch_or_decode_error(preprocessor, signature + tail)


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(1, len(data))) :]
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data)))
        data[start:start] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@FUZZ
@given(data=damaged_images())
def test_damaged_images(data: bytes) -> None:
    for preprocessor in (UNIT, SIGNED, LIMITED):
        assert_batch_or_decode_error(preprocessor, data)


@FUZZ
@given(
    width=st.integers(1, 1 << 16), height=st.integers(1, 1 << 16), bits=st.sampled_from([8, 24, 32])
)
def test_bmp_headers_claiming_any_size(width: int, height: int, bits: int) -> None:
    pixels = b"\x00" * 256
    header = b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
    header += struct.pack("<IiiHHIIiiII", 40, width, -height, 1, bits, 0, len(pixels), 0, 0, 0, 0)
    assert_batch_or_decode_error(UNIT, header + pixels)


# Real images of every shape, channel count and depth the formats hold ---------------------

# Pillow mode -> (formats that store it, numpy dtype, channels)
MODES = {
    "L": (["PNG", "JPEG", "BMP", "GIF"], np.uint8, 1),
    "LA": (["PNG"], np.uint8, 2),
    "RGB": (["PNG", "JPEG", "BMP", "GIF"], np.uint8, 3),
    "RGBA": (["PNG", "BMP"], np.uint8, 4),
    "CMYK": (["JPEG"], np.uint8, 4),
    "I;16": (["PNG"], np.uint16, 1),
}
LOSSLESS = {"PNG", "BMP", "GIF"}


@st.composite
def encoded_images(draw: st.DrawFn) -> tuple[bytes, str, str]:
    mode = draw(st.sampled_from(sorted(MODES)))
    formats, dtype, channels = MODES[mode]
    image_format = draw(st.sampled_from(formats))
    shape = (draw(st.integers(1, 64)), draw(st.integers(1, 64)), channels)
    pixels = draw(hnp.arrays(dtype, shape))
    if mode == "CMYK":
        image = Image.frombytes("CMYK", (shape[1], shape[0]), pixels.tobytes())
    elif mode == "I;16":
        image = Image.fromarray(pixels[..., 0])
    else:
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    return encode(image, image_format), mode, image_format


@FUZZ
@given(encoded=encoded_images())
def test_every_small_image_decodes_within_the_contract(encoded: tuple[bytes, str, str]) -> None:
    data, mode, image_format = encoded
    for preprocessor in (UNIT, SIGNED):
        batch = preprocessor.batch([data])
        assert batch.shape == (1, *SIZE, 3) and batch.dtype == np.float32
        low, high = preprocessor.contract.value_range
        assert batch.min() >= low and batch.max() <= high
    if image_format in LOSSLESS and mode != "I;16":
        # Lossless files give exactly what Pillow reads (alpha dropped, grey repeated).
        reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_allclose(UNIT.batch([data]), UNIT.batch([reference]), atol=1e-6)


# The two orientation parsers agree on anything ----------------------------------------------

graph_orientation = tf.function(
    _orientation_tensor, input_signature=[tf.TensorSpec([], tf.string)], autograph=False
)


@st.composite
def exif_blocks(draw: st.DrawFn) -> bytes:
    """JPEGs and PNGs with EXIF blocks that are right, slightly wrong or garbage."""
    order = draw(st.sampled_from(["<", ">"]))
    marker = b"II" if order == "<" else b"MM"
    count = draw(st.integers(0, 4))
    entries = b""
    for _ in range(count):
        tag = draw(st.sampled_from([0x0112, 0x0110, 0x0132, draw(st.integers(0, 0xFFFF))]))
        kind = draw(st.sampled_from([3, 4, draw(st.integers(0, 12))]))
        value = draw(st.integers(0, 10)) if kind == 3 else draw(st.integers(0, 2**32 - 1))
        packed = (
            struct.pack(order + "H", value & 0xFFFF) + b"\x00\x00"
            if kind == 3
            else struct.pack(order + "I", value)
        )
        entries += struct.pack(order + "HHI", tag, kind, 1) + packed
    offset = draw(st.sampled_from([8, draw(st.integers(0, 2**32 - 1))]))
    magic = draw(st.sampled_from([42, draw(st.integers(0, 0xFFFF))]))
    tiff = marker + struct.pack(order + "HI", magic, offset) + struct.pack(order + "H", count)
    tiff += entries + draw(st.binary(max_size=8))
    if draw(st.booleans()):
        tiff = tiff[: draw(st.integers(0, len(tiff)))]
    if draw(st.booleans()):
        segment = b"Exif\x00\x00" + tiff
        length = draw(st.sampled_from([len(segment) + 2, draw(st.integers(0, 0xFFFF))]))
        app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        prefix = app0 if draw(st.booleans()) else b""
        return b"\xff\xd8" + prefix + b"\xff\xe1" + struct.pack(">H", length & 0xFFFF) + segment
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\x00" * 17
    return header + struct.pack(">I", len(tiff)) + b"eXIf" + tiff + b"\x00" * 4


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(exif_blocks(), st.binary(max_size=64)))
def test_python_and_tensorflow_read_the_same_orientation(data: bytes) -> None:
    expected = _orientation_of(data)
    assert 1 <= expected <= 8
    assert int(graph_orientation(tf.constant(data))) == expected
    info = _inspect(_bytes_reader(data))
    if info is not None and info.format in ("JPEG", "PNG"):
        assert info.orientation == expected


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_seed_images_are_valid(seed: int) -> None:
    assert UNIT.batch([SEEDS[seed]]).shape == (1, *SIZE, 3)
