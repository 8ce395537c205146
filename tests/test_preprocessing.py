"""Tests for Preprocessor (hubtransfer/_preprocessing.py), on real image files."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageOps

import hubtransfer
from hubtransfer import (
    BackboneSpec,
    ImageDecodeError,
    InvalidParameterError,
    PreprocessingContract,
    Preprocessor,
)
from hubtransfer._preprocessing import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS

SIZE = (8, 6)
UNIT = Preprocessor(PreprocessingContract(input_size=SIZE))
SIGNED = Preprocessor(PreprocessingContract(input_size=SIZE, value_range=(-1.0, 1.0)))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NORMALISED = Preprocessor(PreprocessingContract(input_size=SIZE, mean=MEAN, std=STD))
COLOUR = (200, 100, 7)


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def solid(mode: str = "RGB", size: tuple[int, int] = (20, 12)) -> Image.Image:
    """A solid COLOUR image, converted to ``mode`` (Pillow sizes are (width, height))."""
    image = Image.new("RGB", size, COLOUR)
    if mode == "P":  # an adaptive palette keeps the colour exact (the web palette dithers)
        return image.convert("P", palette=Image.Palette.ADAPTIVE)
    return image.convert(mode)


def gradient(height: int = 30, width: int = 17) -> np.ndarray:
    rows = np.linspace(0, 255, height, dtype=np.float64)[:, None, None]
    columns = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
    image = np.concatenate([rows + 0 * columns, 0 * rows + columns, (rows + columns) / 2], -1)
    return np.asarray(image.round(), np.uint8)


def expected_unit(rgb: tuple[int, int, int]) -> np.ndarray:
    """The float32 value every pixel of a solid ``rgb`` image maps to in [0, 1]."""
    return np.asarray(rgb, np.float32) / np.asarray(255, np.float32)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes], Path]:
    def write_file(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write_file


# Construction -------------------------------------------------------------------


def test_construction_and_value_semantics() -> None:
    contract = PreprocessingContract(input_size=(32, 24))
    preprocessor = Preprocessor(contract)
    assert preprocessor.contract is contract
    assert preprocessor.output_shape == (32, 24, 3)
    assert preprocessor == Preprocessor(PreprocessingContract(input_size=(32, 24)))
    assert hash(preprocessor) == hash(Preprocessor(contract))
    assert preprocessor != UNIT
    assert "input_size=(32, 24)" in repr(preprocessor)
    restored = pickle.loads(pickle.dumps(preprocessor))
    assert restored == preprocessor
    with pytest.raises(InvalidParameterError, match="must be a PreprocessingContract"):
        Preprocessor((224, 224))  # type: ignore[arg-type]


def test_from_spec() -> None:
    spec = BackboneSpec(
        name="my_fv",
        handle="/models/fv",
        input_size=(96, 64),
        output_kind="feature_vector",
        feature_dim=8,
        value_range=(-1.0, 1.0),
    )
    preprocessor = Preprocessor.from_spec(spec)
    assert preprocessor.contract == spec.preprocessing
    with pytest.raises(InvalidParameterError, match="must be a BackboneSpec"):
        Preprocessor.from_spec(spec.preprocessing)  # type: ignore[arg-type]


def test_image_extensions() -> None:
    assert {".jpg", ".jpeg", ".png", ".gif", ".bmp"} == IMAGE_EXTENSIONS
    assert IMAGE_EXTENSIONS is hubtransfer.IMAGE_EXTENSIONS


# Decoding real files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "image_format"),
    [
        ("rgb.png", "RGB", "PNG"),
        ("rgba.png", "RGBA", "PNG"),
        ("palette.png", "P", "PNG"),
        ("rgb.bmp", "RGB", "BMP"),
        ("rgba.bmp", "RGBA", "BMP"),
        ("palette.gif", "P", "GIF"),
        ("UPPER.PNG", "RGB", "PNG"),
        ("no_extension", "RGB", "PNG"),
        ("misnamed.jpg", "RGB", "PNG"),
    ],
)
def test_lossless_files_decode_to_exact_values(
    write: Callable[[str, bytes], Path], name: str, mode: str, image_format: str
) -> None:
    path = write(name, encode(solid(mode), image_format))
    image = UNIT.load(path).numpy()
    assert image.shape == (*SIZE, 3) and image.dtype == np.float32
    # Palette conversion may shift the colour: compare with what Pillow reads back.
    [[colour]] = np.asarray(Image.open(path).convert("RGB"))[:1, :1]
    np.testing.assert_allclose(image, np.broadcast_to(colour / 255, image.shape), atol=1e-6)


@pytest.mark.parametrize("image_format", ["PNG", "BMP", "GIF"])
def test_grey_files_become_rgb(write: Callable[[str, bytes], Path], image_format: str) -> None:
    grey = Image.new("L", (9, 9), 77)
    image = UNIT.load(write("grey.img", encode(grey, image_format))).numpy()
    np.testing.assert_allclose(image, np.full((*SIZE, 3), 77 / 255, np.float32), atol=1e-6)


def test_grey_with_alpha_png(write: Callable[[str, bytes], Path]) -> None:
    grey = Image.new("LA", (5, 5), (90, 10))
    image = UNIT.load(write("la.png", encode(grey, "PNG"))).numpy()
    np.testing.assert_allclose(image, np.full((*SIZE, 3), 90 / 255, np.float32), atol=1e-6)


def test_alpha_is_dropped_not_composited(write: Callable[[str, bytes], Path]) -> None:
    transparent = Image.new("RGBA", (6, 6), (10, 20, 30, 0))
    image = UNIT.load(write("transparent.png", encode(transparent, "PNG"))).numpy()
    np.testing.assert_allclose(image[0, 0], expected_unit((10, 20, 30)), atol=1e-6)


@pytest.mark.parametrize("name", ["photo.jpg", "PHOTO.JPG", "photo.jpeg", "Photo.JPEG"])
def test_jpeg_is_close_to_the_source_colour(write: Callable[[str, bytes], Path], name: str) -> None:
    path = write(name, encode(solid(), "JPEG", quality=95))
    image = UNIT.load(path).numpy()
    expected = np.broadcast_to(expected_unit(COLOUR), image.shape)
    np.testing.assert_allclose(image, expected, atol=3 / 255)


def test_grey_and_cmyk_jpeg(write: Callable[[str, bytes], Path]) -> None:
    grey = UNIT.load(write("grey.jpg", encode(Image.new("L", (8, 8), 128), "JPEG"))).numpy()
    np.testing.assert_allclose(grey, np.full((*SIZE, 3), 128 / 255), atol=2 / 255)
    cmyk = UNIT.load(write("cmyk.jpg", encode(solid("CMYK"), "JPEG", quality=95))).numpy()
    np.testing.assert_allclose(cmyk[0, 0], expected_unit(COLOUR), atol=4 / 255)


def test_sixteen_bit_png_is_scaled_to_eight_bits(write: Callable[[str, bytes], Path]) -> None:
    values = np.array([[0, 257 * 100], [40000, 65535]], np.uint16)
    path = write("deep.png", encode(Image.fromarray(values), "PNG"))
    assert Image.open(path).mode.startswith("I;16")
    decoded = UNIT.decode(tf.io.read_file(str(path))).numpy()
    assert decoded.dtype == np.uint8 and decoded.shape == (2, 2, 3)
    np.testing.assert_allclose(decoded[..., 0], values / 257, atol=1.0)
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])


def test_animated_gif_gives_its_first_frame(write: Callable[[str, bytes], Path]) -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    path = write("anim.GIF", buffer.getvalue())
    assert getattr(Image.open(path), "n_frames", 1) == 2
    image = UNIT.load(path).numpy()
    np.testing.assert_allclose(image[0, 0], [1.0, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_bmp_pixels_match_pillow(write: Callable[[str, bytes], Path], mode: str) -> None:
    source = Image.fromarray(gradient(7, 5)).convert(mode)  # odd width: padded BMP rows
    decoded = UNIT.decode(write("g.bmp", encode(source, "BMP")).read_bytes()).numpy()
    np.testing.assert_array_equal(decoded, np.asarray(source.convert("RGB")))


def test_value_ranges_and_normalisation(write: Callable[[str, bytes], Path]) -> None:
    path = write("solid.png", encode(solid(), "PNG"))
    unit = expected_unit(COLOUR)
    np.testing.assert_allclose(UNIT.load(path).numpy()[3, 2], unit, atol=1e-6)
    np.testing.assert_allclose(SIGNED.load(path).numpy()[3, 2], unit * 2 - 1, atol=1e-6)
    normalised = (unit - np.asarray(MEAN)) / np.asarray(STD)
    np.testing.assert_allclose(NORMALISED.load(path).numpy()[3, 2], normalised, atol=1e-5)


def test_black_and_white_hit_the_ends_of_the_range() -> None:
    black_white = np.zeros((2, 2, 3), np.uint8)
    black_white[1] = 255
    for preprocessor, (low, high) in ((UNIT, (0.0, 1.0)), (SIGNED, (-1.0, 1.0))):
        batch = preprocessor.batch([black_white[:1], black_white[1:]])
        assert batch[0].min() == batch[0].max() == low
        assert batch[1].min() == batch[1].max() == high


@pytest.mark.parametrize("method", ["bilinear", "nearest", "bicubic", "area"])
def test_every_resize_method_keeps_shape_and_range(method: str) -> None:
    preprocessor = Preprocessor(
        PreprocessingContract(input_size=(16, 16), value_range=(-1.0, 1.0), resize_method=method)  # type: ignore[arg-type]
    )
    checkerboard = (np.indices((5, 7)).sum(0) % 2 * 255).astype(np.uint8)
    for image in (checkerboard, gradient(64, 40)):
        batch = preprocessor.batch([image])
        assert batch.shape == (1, 16, 16, 3)
        assert batch.min() >= -1.0 and batch.max() <= 1.0  # bicubic overshoot is clipped


# Errors ---------------------------------------------------------------------------------


def test_text_file_named_jpg(write: Callable[[str, bytes], Path]) -> None:
    path = write("notes.jpg", b"These are my holiday notes, not a photo.\n")
    with pytest.raises(ImageDecodeError) as info:
        UNIT.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "is not a JPEG, PNG, GIF or BMP image" in message
    assert "looks like text: 'These are my holiday notes, no'" in message
    assert "Convert it to JPEG or PNG" in message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "is empty (0 bytes)"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "it is WebP"),
        (b"II*\x00\x08\x00\x00\x00", "it is TIFF"),
        (b"\x00\x00\x00\x18ftypheic", "HEIC/AVIF"),
        (b"%PDF-1.7\n", "it is a PDF"),
        (bytes(range(200, 216)), "starts with bytes c8 c9 ca"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "could not be decoded"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, "could not be decoded"),
    ],
)
def test_undecodable_bytes(write: Callable[[str, bytes], Path], data: bytes, fragment: str) -> None:
    path = write("bad.png", data)
    with pytest.raises(ImageDecodeError, match=r"bad\.png") as info:
        UNIT.load(path)
    assert fragment in str(info.value)
    with pytest.raises(ImageDecodeError, match=r"images\[1\]") as info:
        UNIT.batch([np.zeros((2, 2), np.uint8), data])
    assert fragment in str(info.value)


def test_truncated_png(write: Callable[[str, bytes], Path]) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    with pytest.raises(ImageDecodeError, match=r"cut\.png.*could not be decoded.*truncated"):
        UNIT.load(write("cut.png", data[: len(data) // 2]))


def test_palette_and_one_bit_bmp_are_rejected(write: Callable[[str, bytes], Path]) -> None:
    palette = write("palette.bmp", encode(solid("P"), "BMP"))
    with pytest.raises(ImageDecodeError, match=r"palette BMP.*wrong colours"):
        UNIT.load(palette)
    one_bit = write("mono.bmp", encode(solid("1"), "BMP"))
    with pytest.raises(ImageDecodeError, match="1-bit BMP"):
        UNIT.load(one_bit)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match=r"missing\.png' does not exist"):
        UNIT.load(tmp_path / "missing.png")
    with pytest.raises(ImageDecodeError, match="is a folder"):
        UNIT.load(tmp_path)
    with pytest.raises(InvalidParameterError, match="must be a file path"):
        UNIT.load(3)  # type: ignore[arg-type]


# The TensorFlow path -------------------------------------------------------------------------


def test_call_on_single_images_and_batches() -> None:
    image = gradient(20, 12)
    single = UNIT(image).numpy()
    assert single.shape == (*SIZE, 3) and single.dtype == np.float32
    batch = UNIT(np.stack([image, image[::-1]])).numpy()
    assert batch.shape == (2, *SIZE, 3)
    np.testing.assert_allclose(batch[0], single, atol=1e-6)
    np.testing.assert_allclose(UNIT(image.astype(np.float64) / 255).numpy(), single, atol=1e-6)
    sixteen = image.astype(np.uint16) * 257
    np.testing.assert_allclose(UNIT(sixteen).numpy(), single, atol=1e-6)


def test_call_with_unknown_channel_count_in_a_graph() -> None:
    function = tf.function(
        UNIT.__call__, input_signature=[tf.TensorSpec([None, None, None], tf.uint8)]
    )
    assert function.get_concrete_function().structured_outputs.shape == (*SIZE, 3)
    grey = np.full((4, 4, 1), 51, np.uint8)
    rgba = np.concatenate([np.full((4, 4, 3), 51, np.uint8), np.zeros((4, 4, 1), np.uint8)], -1)
    for image in (grey, rgba):
        np.testing.assert_allclose(function(image).numpy(), np.full((*SIZE, 3), 0.2), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="1, 2, 3 or 4 channels"):
        function(np.zeros((4, 4, 5), np.uint8))


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (np.zeros((4, 4), np.uint8), "shape (4, 4)"),
        (np.zeros((1, 1, 4, 4, 3), np.uint8), "shape (1, 1, 4, 4, 3)"),
        (np.zeros((4, 4, 3), np.int32), "Got dtype int32"),
        (np.zeros((4, 4, 5), np.uint8), "1, 2, 3 or 4 channels"),
    ],
)
def test_call_rejects_bad_tensors(image: np.ndarray, fragment: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        UNIT(image)
    assert fragment in str(info.value)


def test_usable_inside_dataset_map(write: Callable[[str, bytes], Path]) -> None:
    paths = [
        str(write("a.png", encode(Image.fromarray(gradient()), "PNG"))),
        str(write("b.JPG", encode(solid(), "JPEG"))),
        str(write("c.gif", encode(solid("P"), "GIF"))),
    ]
    mapped = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda path: NORMALISED(NORMALISED.decode(tf.io.read_file(path)))
    )
    assert mapped.element_spec.shape == (*SIZE, 3)
    np.testing.assert_allclose(
        np.stack(list(mapped.as_numpy_iterator())), NORMALISED.batch(paths), atol=1e-6
    )


# batch ---------------------------------------------------------------------------------------


def test_batch_mixes_paths_bytes_and_arrays(write: Callable[[str, bytes], Path]) -> None:
    png = encode(solid(), "PNG")
    path = write("solid.png", png)
    array = np.asarray(solid())
    batch = SIGNED.batch(
        [path, str(path), png, bytearray(png), array, array.astype(np.float32) / 255]
    )
    assert batch.shape == (6, *SIZE, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, np.broadcast_to(batch[0], batch.shape), atol=1e-6)
    np.testing.assert_allclose(batch[0, 0, 0], expected_unit(COLOUR) * 2 - 1, atol=1e-6)


def test_batch_array_shapes() -> None:
    grey = np.full((5, 7), 255, np.uint8)
    shapes = [grey, grey[..., None], np.stack([grey, grey], -1), np.dstack([grey] * 3)]
    shapes.append(np.dstack([grey] * 3 + [np.zeros_like(grey)]))
    batch = UNIT.batch(shapes)
    assert batch.shape == (5, *SIZE, 3)
    np.testing.assert_allclose(batch, 1.0, atol=1e-6)
    assert UNIT.batch(np.zeros((3, 4, 4, 3), np.uint8)).shape == (3, *SIZE, 3)
    assert UNIT.batch([]).shape == (0, *SIZE, 3)
    assert UNIT.batch(iter([grey])).shape == (1, *SIZE, 3)


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (np.zeros((4, 4, 5), np.uint8), "images[1] has shape (4, 4, 5)"),
        (np.zeros((4,), np.uint8), "images[1] has shape (4,)"),
        (np.zeros((0, 4, 3), np.uint8), "images[1] has shape (0, 4, 3)"),
        (np.zeros((1, 4, 4, 3), np.uint8), "images[1] has shape (1, 4, 4, 3)"),
        (np.zeros((4, 4, 3), np.int64), "images[1] has dtype int64"),
        (np.zeros((4, 4, 3), bool), "images[1] has dtype bool"),
        (np.full((4, 4, 3), 255.0), "images[1] is a float array with values in [255, 255]"),
        (np.full((4, 4), -0.5, np.float32), "values in [-0.5, -0.5]"),
        (np.full((4, 4), np.nan, np.float32), "values in [nan, nan]"),
        (Image.new("RGB", (4, 4)), "numpy.asarray(image)"),
        (tf.zeros((4, 4, 3), tf.uint8), "tensor.numpy()"),
        (3, "images[1] is a int"),
    ],
)
def test_batch_rejects_bad_items_naming_their_position(image: object, fragment: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        UNIT.batch([np.zeros((2, 2), np.uint8), image])  # type: ignore[list-item]
    assert fragment in str(info.value)


@pytest.mark.parametrize("images", ["photo.jpg", b"\xff\xd8\xff", Path("a.png")])
def test_batch_rejects_a_single_image(images: object) -> None:
    with pytest.raises(InvalidParameterError, match=r"pass \[image\]"):
        UNIT.batch(images)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"shape \(4, 4, 3\); for one image"):
        UNIT.batch(np.zeros((4, 4, 3), np.uint8))


# dataset -------------------------------------------------------------------------------------


@pytest.fixture
def image_files(write: Callable[[str, bytes], Path]) -> list[Path]:
    rng = np.random.default_rng(0)
    files = []
    for index, (image_format, name) in enumerate(
        [("PNG", "a.png"), ("JPEG", "b.JPG"), ("BMP", "c.bmp"), ("GIF", "d.gif"), ("PNG", "e")]
    ):
        pixels = rng.integers(0, 256, (10 + index * 7, 31 - index * 4, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        if image_format == "GIF":
            image = image.convert("P")
        files.append(write(name, encode(image, image_format)))
    return files


def test_dataset_equals_batch(image_files: list[Path]) -> None:
    data = NORMALISED.dataset(image_files, batch_size=2, num_parallel_calls=3)
    batches = list(data.as_numpy_iterator())
    assert [len(batch) for batch in batches] == [2, 2, 1]
    np.testing.assert_allclose(np.concatenate(batches), NORMALISED.batch(image_files), atol=1e-6)
    assert data.element_spec.shape.as_list() == [None, *SIZE, 3]


def test_dataset_with_labels_keeps_order(image_files: list[Path]) -> None:
    labels = [4, 3, 2, 1, 0]
    data = UNIT.dataset([str(path) for path in image_files], labels, batch_size=4, prefetch=0)
    images, label_batches = zip(*data.as_numpy_iterator(), strict=True)
    assert np.concatenate(label_batches).tolist() == labels
    assert label_batches[0].dtype == np.int32
    np.testing.assert_allclose(np.concatenate(images), UNIT.batch(image_files), atol=1e-6)


def test_dataset_turns_autotune_off(image_files: list[Path]) -> None:
    options = UNIT.dataset(image_files).options()
    assert options.autotune.enabled is False
    assert options.deterministic is True


def test_dataset_of_nothing() -> None:
    assert list(UNIT.dataset([]).as_numpy_iterator()) == []


def test_dataset_lists_every_bad_file_up_front(
    image_files: list[Path], write: Callable[[str, bytes], Path], tmp_path: Path
) -> None:
    text = write("readme.jpg", b"hello")
    empty = write("empty.png", b"")
    palette = write("palette.bmp", encode(solid("P"), "BMP"))
    paths = [*image_files, text, tmp_path / "gone.png", empty, palette]
    with pytest.raises(ImageDecodeError) as info:
        UNIT.dataset(paths)
    message = str(info.value)
    assert message.startswith("4 of 9 files cannot be used as images")
    for fragment in (
        f"{str(text)!r} is not a JPEG, PNG, GIF or BMP image",
        f"{str(tmp_path / 'gone.png')!r} does not exist",
        f"{str(empty)!r} is empty",
        f"{str(palette)!r} is a palette BMP",
    ):
        assert fragment in message
    for good in image_files:
        assert repr(str(good)) not in message


def test_dataset_caps_the_listing(write: Callable[[str, bytes], Path]) -> None:
    paths = [write(f"bad{index}.jpg", b"nope") for index in range(25)]
    with pytest.raises(ImageDecodeError, match="and 5 more"):
        UNIT.dataset(paths)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"batch_size": True}, "'batch_size' parameter"),
        ({"num_parallel_calls": -1}, "'num_parallel_calls' parameter"),
        ({"prefetch": -1}, "'prefetch' parameter"),
        ({"labels": [0, 1]}, "has 2 labels for 5 paths"),
        ({"labels": ["a"] * 5}, "sequence of ints"),
        ({"labels": [0.5] * 5}, "sequence of ints"),
    ],
)
def test_dataset_parameters(
    image_files: list[Path], arguments: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        UNIT.dataset(image_files, **arguments)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_dataset_rejects_a_single_path(image_files: list[Path]) -> None:
    with pytest.raises(InvalidParameterError, match=r"for one file pass \[path\]"):
        UNIT.dataset(str(image_files[0]))
    with pytest.raises(InvalidParameterError, match="item 1"):
        UNIT.dataset([image_files[0], 7])  # type: ignore[list-item]


# Properties ----------------------------------------------------------------------------------

image_arrays = st.builds(
    lambda shape, channels: shape + channels,
    st.tuples(st.integers(1, 64), st.integers(1, 64)),
    st.sampled_from([(), (1,), (3,), (4,)]),
).flatmap(lambda shape: hnp.arrays(np.uint8, shape))


@settings(max_examples=40, deadline=None)
@given(images=st.lists(image_arrays, min_size=1, max_size=3))
def test_random_images_give_float32_batches_within_range(images: list[np.ndarray]) -> None:
    for preprocessor in (UNIT, SIGNED, NORMALISED):
        batch = preprocessor.batch(images)
        assert batch.shape == (len(images), *SIZE, 3)
        assert batch.dtype == np.float32
        low, high = preprocessor.contract.value_range
        if preprocessor.contract.mean is not None:
            mean, std = np.asarray(MEAN), np.asarray(STD)
            low_bound, high_bound = (low - mean) / std, (high - mean) / std
            assert np.all(batch >= low_bound - 1e-5) and np.all(batch <= high_bound + 1e-5)
        else:
            assert batch.min() >= low and batch.max() <= high


@settings(max_examples=15, deadline=None)
@given(image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))))
def test_lossless_round_trip_matches_arrays(image: np.ndarray) -> None:
    png = encode(Image.fromarray(image), "PNG")
    bmp = encode(Image.fromarray(image), "BMP")
    batch = UNIT.batch([image, png, bmp])
    np.testing.assert_array_equal(batch[0], batch[1])
    np.testing.assert_array_equal(batch[0], batch[2])


@settings(max_examples=60, deadline=None)
@given(
    dtype=st.sampled_from([np.uint8, np.uint16]),
    method=st.sampled_from(["bilinear", "nearest"]),
    height=st.integers(1, 48),
    width=st.integers(1, 48),
    size=st.tuples(st.integers(1, 32), st.integers(1, 32)),
    extremes=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_integer_pixels_skip_only_steps_that_change_nothing(
    dtype: type[np.unsignedinteger],
    method: str,
    height: int,
    width: int,
    size: tuple[int, int],
    extremes: bool,
    seed: int,
) -> None:
    # For bilinear and nearest, the preprocessor leaves out the clip (and the
    # value-range step for [0, 1]); the result must equal the full formula bit for bit.
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    if extremes:  # only 0 and the maximum: interpolation right at the bounds
        image = rng.choice([0, info.max], size=(height, width, 3)).astype(dtype)
    else:
        image = rng.integers(0, info.max, size=(height, width, 3), endpoint=True, dtype=dtype)
    contract = hubtransfer.PreprocessingContract(input_size=size, resize_method=method)
    got = Preprocessor(contract)(image).numpy()
    resized = tf.cast(tf.image.resize(image, size, method=method), tf.float32)
    full = tf.clip_by_value(resized / float(info.max), 0.0, 1.0) * 1.0 + 0.0
    np.testing.assert_array_equal(got, full.numpy())
    assert got.min() >= 0.0 and got.max() <= 1.0


# EXIF orientation ----------------------------------------------------------------------------


def with_orientation(image: Image.Image, image_format: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    options: dict[str, object] = (
        {"quality": 100, "subsampling": 0} if image_format == "JPEG" else {}
    )
    return encode(image, image_format, exif=exif.tobytes(), **options)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(
    write: Callable[[str, bytes], Path], image_format: str, orientation: int
) -> None:
    data = with_orientation(Image.fromarray(gradient(18, 10)), image_format, orientation)
    path = write(f"turned.{image_format.lower()}", data)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    # The TensorFlow path (orientation parsed with graph ops) ...
    decoded = UNIT.decode(data).numpy()
    assert decoded.shape == upright.shape
    difference = np.abs(decoded.astype(int) - upright)
    if image_format == "PNG":
        assert difference.max() == 0
    else:  # libjpeg builds differ by a few levels; a wrong turn differs by dozens
        assert difference.mean() < 3
    # ... and the Python paths (orientation read with the header) agree with each other.
    preprocessor = Preprocessor(PreprocessingContract(input_size=upright.shape[:2]))
    expected = preprocessor(decoded).numpy()
    np.testing.assert_allclose(preprocessor.load(path).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(preprocessor.batch([data])[0], expected, atol=1e-6)
    [batch] = list(preprocessor.dataset([path]).as_numpy_iterator())
    np.testing.assert_allclose(batch[0], expected, atol=1e-6)


def test_exif_orientation_in_a_big_endian_exif_block(write: Callable[[str, bytes], Path]) -> None:
    # Pillow writes little-endian EXIF; cameras also write big-endian ("MM") blocks.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01"
    tiff += b"\x00\x08\x00\x00" + b"\x00\x00\x00\x00"
    segment = b"Exif\x00\x00" + tiff
    plain = encode(Image.fromarray(gradient(9, 5)), "JPEG", quality=100)
    data = plain[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + plain[2:]
    assert Image.open(write("mm.jpg", data)).getexif()[0x0112] == 8
    assert UNIT.decode(data).shape == (5, 9, 3)
    assert UNIT.batch([data]).shape == (1, *SIZE, 3)


def test_dataset_reads_orientation_per_file(write: Callable[[str, bytes], Path]) -> None:
    image = Image.fromarray(gradient(9, 5))
    paths = [write(f"{o}.jpg", with_orientation(image, "JPEG", o)) for o in (1, 6, 3, 8)]
    preprocessor = Preprocessor(PreprocessingContract(input_size=(9, 9)))
    from_dataset = np.concatenate(
        list(preprocessor.dataset(paths, batch_size=3).as_numpy_iterator())
    )
    np.testing.assert_allclose(from_dataset, preprocessor.batch(paths), atol=1e-6)
    # Upright, the four differ: 6 and 8 are mirror images of each other, 3 of 1.
    np.testing.assert_allclose(from_dataset[2], from_dataset[0][::-1, ::-1], atol=0.05)


@pytest.mark.parametrize("orientations", [(1, 1, 1), (1, 6, 1)])
def test_both_pipelines_turn_images_whether_all_upright_or_not(
    write: Callable[[str, bytes], Path], orientations: tuple[int, ...]
) -> None:
    # All upright, the pipelines add no orientation op at all; one turned file brings it back.
    paths = [
        write(f"{n}.jpg", with_orientation(Image.fromarray(gradient(9 + n, 5)), "JPEG", o))
        for n, o in enumerate(orientations)
    ]
    preprocessor = Preprocessor(PreprocessingContract(input_size=(9, 9)))
    expected = preprocessor.batch(paths)
    from_dataset = np.concatenate(list(preprocessor.dataset(paths).as_numpy_iterator()))
    np.testing.assert_allclose(from_dataset, expected, atol=1e-6)
    files = [str(p) for p in paths]
    tolerant = preprocessor._tolerant_dataset(files, orientations, batch_size=2)
    positions, images = zip(*tolerant.as_numpy_iterator(), strict=True)
    assert np.concatenate(positions).tolist() == [0, 1, 2]
    np.testing.assert_allclose(np.concatenate(images), expected, atol=1e-6)


# Palette transparency, 12-bit JPEG ----------------------------------------------------------


def test_palette_png_with_transparency_gives_the_stored_colours(
    write: Callable[[str, bytes], Path],
) -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (2, 0, 4, 4))
    path = write("p.png", encode(image, "PNG", transparency=0))
    decoded = UNIT.decode(path.read_bytes()).numpy()
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(path).convert("RGB")))
    assert decoded[0, 0].tolist() == [255, 0, 0] and decoded[0, 3].tolist() == [0, 255, 0]


def test_twelve_bit_jpeg_is_refused_by_name(write: Callable[[str, bytes], Path]) -> None:
    data = encode(solid(), "JPEG")
    sof = data.index(b"\xff\xc0")
    path = write("deep.jpg", data[: sof + 4] + bytes([12]) + data[sof + 5 :])
    with pytest.raises(ImageDecodeError, match=r"deep\.jpg' is a 12-bit JPEG; TensorFlow decodes"):
        UNIT.load(path)


# The pixel limit ------------------------------------------------------------------------------


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb's calling card)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bombs_are_refused_before_decoding(
    write: Callable[[str, bytes], Path],
) -> None:
    bomb = write("bomb.png", png_header_claiming(20_000, 20_000))
    message = (
        r"bomb\.png' has 20,000 x 20,000 pixels = 400,000,000 pixels, more than the limit of "
        r"89,478,485 that guards against decompression bombs\. Downscale it, or raise the "
        r"limit: max_pixels=400_000_000 or more \(None turns the check off\)"
    )
    with pytest.raises(ImageDecodeError, match=message):
        UNIT.load(bomb)
    with pytest.raises(ImageDecodeError, match=r"images\[0\] \(\d+ bytes\) has 20,000 x 20,000"):
        UNIT.batch([bomb.read_bytes()])
    with pytest.raises(ImageDecodeError, match=r"(?s)1 of 1 files.*bomb\.png' has 20,000 x 20,000"):
        UNIT.dataset([bomb])
    # The TensorFlow path checks the header too, before allocating anything.
    with pytest.raises(tf.errors.InvalidArgumentError, match="more pixels than the limit"):
        UNIT.decode(bomb.read_bytes())


def test_the_pixel_limit_is_configurable(write: Callable[[str, bytes], Path]) -> None:
    path = write("g.png", encode(Image.fromarray(gradient(10, 10)), "PNG"))
    strict = Preprocessor(PreprocessingContract(input_size=SIZE), max_pixels=99)
    with pytest.raises(
        ImageDecodeError, match="10 x 10 pixels = 100 pixels, more than the limit of 99"
    ):
        strict.load(path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 99"):
        strict.decode(path.read_bytes())
    assert Preprocessor(UNIT.contract, max_pixels=100).load(path).shape == (*SIZE, 3)
    assert Preprocessor(UNIT.contract, max_pixels=None).load(path).shape == (*SIZE, 3)
    # Arrays are already decoded: the limit is about what decoding would allocate.
    assert strict.batch([gradient(10, 10)]).shape == (1, *SIZE, 3)


def test_an_animated_gif_counts_every_frame(write: Callable[[str, bytes], Path]) -> None:
    frames = [Image.new("RGB", (10, 10), (i * 80, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=40)
    path = write("anim.gif", buffer.getvalue())
    limited = Preprocessor(UNIT.contract, max_pixels=250)
    with pytest.raises(
        ImageDecodeError, match=r"3 frames of up to 10 x 10 pixels, 300 pixels in all"
    ):
        limited.load(path)
    assert Preprocessor(UNIT.contract, max_pixels=300).load(path).shape == (*SIZE, 3)


def test_max_pixels_parameter() -> None:
    contract = PreprocessingContract(input_size=SIZE)
    limited = Preprocessor(contract, max_pixels=1000)
    assert limited.max_pixels == 1000 and UNIT.max_pixels == DEFAULT_MAX_PIXELS
    assert limited != UNIT and limited == Preprocessor(contract, max_pixels=1000)
    assert hash(limited) == hash(Preprocessor(contract, max_pixels=1000))
    assert repr(limited).endswith(", max_pixels=1000)") and "max_pixels" not in repr(UNIT)
    assert pickle.loads(pickle.dumps(limited)) == limited
    spec = BackboneSpec(
        name="fv", handle="/m", input_size=SIZE, output_kind="feature_vector", feature_dim=2
    )
    assert Preprocessor.from_spec(spec, max_pixels=None).max_pixels is None
    for bad in (0, -5, 2.5, True, "1000"):
        with pytest.raises(InvalidParameterError, match="'max_pixels' parameter of Preprocessor"):
            Preprocessor(contract, max_pixels=bad)  # type: ignore[arg-type]


def test_sixteen_bit_rgb_png(write: Callable[[str, bytes], Path]) -> None:
    values = np.full((3, 4, 3), 0, np.uint16)
    values[..., 0] = 65535
    values[..., 1] = 257 * 128
    path = write("deep_rgb.png", tf.io.encode_png(values).numpy())
    np.testing.assert_allclose(UNIT.load(path).numpy()[0, 0], [1.0, 128 / 255, 0.0], atol=1e-6)
