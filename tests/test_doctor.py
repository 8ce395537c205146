"""Tests for the dataset doctor (hubtransfer/_doctor.py), on files made here, bad on purpose."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from hubtransfer import DatasetError, ImageDecodeError, InvalidParameterError, from_paths
from hubtransfer._doctor import (
    BadImage,
    DatasetReport,
    check_dataset,
    find_bad_images,
    fix_into,
    screen_collection,
)


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def photo(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A distinct, non-symmetric RGB image (Pillow sizes are (width, height))."""
    width, height = size
    rows = np.linspace(0, 200, height)[:, None]
    columns = np.linspace(0, 120, width)[None, :]
    red = (rows + 0 * columns + seed * 7) % 256
    green = (0 * rows + columns + seed * 13) % 256
    blue = np.full((height, width), (seed * 37) % 256)
    return Image.fromarray(np.stack([red, green, blue], -1).astype(np.uint8))


def jpeg(seed: int, **options: object) -> bytes:
    return encode(photo(seed), "JPEG", quality=95, **options)


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def sixteen_bit_png() -> bytes:
    values = np.linspace(0, 65535, 40 * 40 * 3).reshape(40, 40, 3).astype(np.uint16)
    return bytes(tf.io.encode_png(values).numpy())


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (0, 0, 20, 40))
    return encode(image, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def tree_digest(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# The battery: one class folder with every kind of trouble -------------------------------

GOOD_CATS = [f"cat/good{i}.jpg" for i in range(4)]


def battery_files() -> dict[str, bytes]:
    whole = jpeg(100)
    return {
        **{name: jpeg(i) for i, name in enumerate(GOOD_CATS)},
        "cat/zero.jpg": b"",
        "cat/truncated.jpg": whole[: len(whole) * 2 // 3],
        "cat/notes.jpg": b"These are my holiday notes, not a photo.\n",
        "cat/png_named.jpg": encode(photo(20), "PNG"),
        "cat/bmp_named.jpg": encode(photo(21), "BMP"),
        "cat/cmyk.jpg": encode(photo(22).convert("CMYK"), "JPEG", quality=95),
        "cat/deep.png": sixteen_bit_png(),
        "cat/palette_alpha.png": palette_png_with_transparency(),
        "cat/rotated.jpg": jpeg(23, exif=exif_with_orientation(6)),
        "cat/anim.gif": animated_gif(),
        "cat/tiny.png": encode(photo(24, (8, 8)), "PNG"),
        "cat/grey.png": encode(photo(25).convert("L"), "PNG"),
        "cat/dup_a.jpg": jpeg(26),
        "cat/dup_b.jpg": jpeg(26),
        "cat/.hidden.jpg": b"",
        "cat/.thumbs/1.jpg": b"",
        "cat/readme.txt": b"notes",
        "dog/good0.jpg": jpeg(30),
        "dog/good1.jpg": jpeg(31),
        "dog/same_as_cat.jpg": jpeg(0),  # identical to cat/good0.jpg
        "bird/good0.jpg": jpeg(40),
        "bird/good1.jpg": jpeg(41),
        ".DS_Store": b"\x00\x00",
        "labels.csv": b"file,label\n",
    }


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_files(tmp_path_factory.mktemp("battery") / "data", battery_files())


@pytest.fixture(scope="module")
def battery_report(battery: Path) -> DatasetReport:
    return check_dataset(battery, validation=0.0)


def names(paths: tuple[Path, ...], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


def test_bad_files_are_exactly_the_unusable_ones(
    battery: Path, battery_report: DatasetReport
) -> None:
    found = [
        (bad.path.relative_to(battery).as_posix(), bad.kind) for bad in battery_report.bad_files
    ]
    assert found == [
        ("cat/notes.jpg", "not an image"),
        ("cat/truncated.jpg", "damaged"),
        ("cat/zero.jpg", "empty"),
    ]
    reasons = {bad.path.name: bad.reason for bad in battery_report.bad_files}
    assert reasons["zero.jpg"] == "is empty (0 bytes)"
    assert reasons["notes.jpg"].startswith(
        "is not a JPEG, PNG, GIF or BMP image (it looks like text"
    )
    assert reasons["truncated.jpg"].startswith("could not be decoded (")
    assert reasons["truncated.jpg"].endswith("it is probably truncated or damaged")
    assert not battery_report.ok


def test_truncated_jpeg_passes_the_header_check_but_not_the_full_decode(battery: Path) -> None:
    data = (battery / "cat/truncated.jpg").read_bytes()
    assert data.startswith(b"\xff\xd8\xff")  # the header looks fine: only decoding tells


def test_warnings_are_exactly_the_expected_ones(
    battery: Path, battery_report: DatasetReport
) -> None:
    found = sorted(
        (warning.kind, tuple(names(warning.paths, battery))) for warning in battery_report.warnings
    )
    assert found == sorted(
        [
            ("extension mismatch", ("cat/bmp_named.jpg",)),
            ("extension mismatch", ("cat/png_named.jpg",)),
            ("CMYK", ("cat/cmyk.jpg",)),
            ("16-bit", ("cat/deep.png",)),
            ("palette", ("cat/palette_alpha.png",)),
            ("transparency", ("cat/palette_alpha.png",)),
            ("rotated", ("cat/rotated.jpg",)),
            ("palette", ("cat/anim.gif",)),
            ("animated", ("cat/anim.gif",)),
            ("too small", ("cat/tiny.png",)),
            ("grey", ("cat/grey.png",)),
            ("duplicate", ("cat/dup_a.jpg", "cat/dup_b.jpg")),
            ("duplicate across classes", ("cat/good0.jpg", "dog/same_as_cat.jpg")),
            ("imbalance", ()),
            ("skipped", ("cat/readme.txt",)),
            ("skipped", ("labels.csv",)),
        ]
    )


def test_warning_messages_name_the_file_and_the_way_out(battery_report: DatasetReport) -> None:
    messages: dict[str, str] = {}
    for warning in battery_report.warnings:  # the first of each kind
        messages.setdefault(warning.kind, warning.message)
    assert messages["extension mismatch"].startswith("'cat/bmp_named.jpg' is a BMP named .jpg.")
    assert "fix_into renames it" in messages["extension mismatch"]
    assert messages["rotated"].startswith(
        "'cat/rotated.jpg' has EXIF orientation 6 (stored to be turned 90° clockwise)."
    )
    assert messages["too small"].startswith("'cat/tiny.png' is 8 x 8 pixels, under min_size=32")
    assert messages["animated"] == (
        "'cat/anim.gif' is animated (2 frames); only the first frame is used. fix_into keeps "
        "the first frame."
    )
    assert messages["duplicate across classes"].startswith(
        "2 identical files are labelled ['cat', 'dog']: 'cat/good0.jpg', 'dog/same_as_cat.jpg'."
    )
    assert messages["imbalance"] == (
        "The classes are imbalanced: 'cat' has 15 usable images, 'bird' 2 (7.5x, over 3x). "
        "Add images to the small classes, or train with class_weight='balanced'."
    )
    loose, readme = battery_report.warnings_of("skipped")  # in the scan's order
    assert readme.message.startswith("'cat/readme.txt' was skipped: its extension is not")
    assert loose.message == (
        "'labels.csv' lies directly in the data folder, outside every class folder, so it is "
        "not used. Move it into its class's folder."
    )


def test_class_counts(battery_report: DatasetReport) -> None:
    counts = [
        (c.name, c.images, c.usable, c.bad, c.duplicates, c.train, c.validation)
        for c in battery_report.classes
    ]
    assert counts == [
        ("bird", 2, 2, 0, 0, 2, 0),
        ("cat", 18, 15, 3, 1, 15, 0),
        ("dog", 3, 3, 0, 1, 3, 0),
    ]


def test_hidden_files_are_skipped_not_checked(battery: Path, battery_report: DatasetReport) -> None:
    skipped = {(s.path.relative_to(battery).as_posix(), s.reason) for s in battery_report.skipped}
    assert skipped == {
        (".DS_Store", "hidden"),
        ("labels.csv", "outside class folders"),
        ("cat/.hidden.jpg", "hidden"),
        ("cat/.thumbs", "hidden"),
        ("cat/readme.txt", "not an image"),
    }
    checked = {record.path.name for record in battery_report.images}
    assert ".hidden.jpg" not in checked and "1.jpg" not in checked


def test_image_records(battery: Path, battery_report: DatasetReport) -> None:
    records = {r.path.relative_to(battery).as_posix(): r for r in battery_report.images}
    assert len(records) == 23
    rotated = records["cat/rotated.jpg"]
    assert (rotated.format, rotated.width, rotated.height, rotated.orientation) == (
        "JPEG",
        48,
        40,
        6,
    )
    assert (records["cat/cmyk.jpg"].colour, records["cat/deep.png"].bit_depth) == ("CMYK", 16)
    assert records["cat/anim.gif"].frames == 2
    assert records["cat/png_named.jpg"].format == "PNG"
    assert records["cat/zero.jpg"].usable is False
    good = battery / "cat/good0.jpg"
    assert records["cat/good0.jpg"].sha256 == hashlib.sha256(good.read_bytes()).hexdigest()
    assert records["cat/good0.jpg"].subset == "train"


def test_report_json_and_text(battery: Path, battery_report: DatasetReport) -> None:
    data = json.loads(json.dumps(battery_report.to_json(images=True)))
    assert data["format"] == "hubtransfer.dataset-report"
    assert data["ok"] is False
    assert data["totals"] == {"images": 23, "usable": 20, "bad": 3, "warnings": 16, "skipped": 5}
    assert [c["name"] for c in data["classes"]] == ["bird", "cat", "dog"]
    assert len(data["images"]) == 23 and "images" not in battery_report.to_json()
    text = battery_report.format()
    assert text.startswith(
        f"Checked 23 images in 3 classes in {str(battery)!r}: 20 usable, 3 unusable, 16 warnings."
    )
    assert "  'cat/zero.jpg' is empty (0 bytes)" in text
    assert "  duplicate (1):" in text
    assert text.endswith(f"hubtransfer check {str(battery)!r} --fix-into CLEAN_DIR")
    assert "... and" not in text
    assert "... and 1 more" in battery_report.format(limit=2)


# Split leaks and the split itself -------------------------------------------------------


def test_identical_files_across_the_split_are_flagged(tmp_path: Path) -> None:
    # A class of two keeps one file for training and one for validation, whatever the seed.
    root = write_files(
        tmp_path / "data",
        {"a/1.jpg": jpeg(1), "a/2.jpg": jpeg(1), "b/1.jpg": jpeg(2), "b/2.jpg": jpeg(3)},
    )
    report = check_dataset(root, validation=0.2, seed=5)
    leaks = report.warnings_of("split leak")
    assert len(leaks) == 1
    assert names(leaks[0].paths, root) == ["a/1.jpg", "a/2.jpg"]
    subsets = {r.path.name: r.subset for r in report.images if r.label == "a"}
    assert sorted(subsets.values()) == ["train", "validation"]
    assert f"'a/1.jpg' ({subsets['1.jpg']})" in leaks[0].message
    assert [w.kind for w in report.warnings] == ["split leak", "duplicate"]  # worst first
    assert check_dataset(root, validation=0.0).warnings_of("split leak") == ()


def test_the_split_is_the_one_training_makes_of_the_usable_files(tmp_path: Path) -> None:
    from hubtransfer import scan_image_folder, stratified_split

    files = {f"{c}/{i:02}.jpg": jpeg(10 * k + i) for k, c in enumerate("xy") for i in range(10)}
    files["x/99.jpg"] = b""
    root = write_files(tmp_path / "data", files)
    report = check_dataset(root, validation=0.3, seed=7)
    usable = scan_image_folder(root)
    usable = usable.subset(i for i, p in enumerate(usable.paths) if p.name != "99.jpg")
    split = stratified_split(usable, validation=0.3, seed=7)
    assert {r.path for r in report.images if r.subset == "validation"} == set(
        split.validation.paths
    )
    assert [(c.train, c.validation) for c in report.classes] == [(7, 3), (7, 3)]


def test_a_class_with_no_usable_image(tmp_path: Path) -> None:
    root = write_files(tmp_path / "data", {"a/1.jpg": jpeg(1), "b/1.jpg": b"", "b/2.jpg": b"x"})
    report = check_dataset(root)
    [empty] = report.warnings_of("empty class")
    assert empty.message.startswith("Class 'b' has no usable image (all 2 are unusable)")
    assert report.warnings_of("imbalance") == ()


def test_a_clean_folder(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "data", {f"{c}/{i}.jpg": jpeg(10 * ord(c) + i) for c in "ab" for i in range(3)}
    )
    report = check_dataset(root)
    assert report.ok and report.warnings == ()
    assert report.format().endswith("Training can use every file.")
    assert len(report.usable_paths) == 6


def test_pixel_limit_and_twelve_bit_jpeg(tmp_path: Path) -> None:
    normal = jpeg(1)
    # The SOF0 segment's precision byte says 12 bits: TensorFlow cannot decode it.
    sof = normal.index(b"\xff\xc0")
    twelve = normal[: sof + 4] + bytes([12]) + normal[sof + 5 :]
    root = write_files(
        tmp_path / "data", {"a/big.jpg": normal, "a/twelve.jpg": twelve, "b/1.jpg": jpeg(2)}
    )
    report = check_dataset(root, max_pixels=1000)
    bad = {b.path.name: b for b in report.bad_files}
    assert bad["big.jpg"].kind == "too large"
    assert bad["big.jpg"].reason.startswith(
        "has 48 x 40 pixels = 1,920 pixels, more than the limit of 1,000 that guards against "
        "decompression bombs."
    )
    assert bad["big.jpg"].reason.endswith(
        "Downscale it, or raise the limit: max_pixels=2_000 or more (None turns the check off)"
    )
    assert bad["twelve.jpg"].kind == "unsupported"
    assert "12-bit JPEG" in bad["twelve.jpg"].reason
    assert set(bad) == {"big.jpg", "twelve.jpg", "1.jpg"}  # b/1.jpg is over the limit too


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"validation": 1.0}, "'validation' parameter of check_dataset"),
        ({"seed": -1}, "'seed' parameter"),
        ({"min_size": -1}, "'min_size' parameter"),
        ({"max_pixels": 0}, "'max_pixels' parameter of check_dataset"),
        ({"imbalance_threshold": 0.5}, "'imbalance_threshold' parameter"),
        ({"workers": 0}, "'workers' parameter"),
    ],
)
def test_check_parameters(battery: Path, arguments: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        check_dataset(battery, **arguments)  # type: ignore[arg-type]


def test_check_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        check_dataset(tmp_path / "nowhere")


# fix_into -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixed(
    battery: Path, battery_report: DatasetReport, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, object, dict[str, str]]:
    before = tree_digest(battery)
    out = tmp_path_factory.mktemp("fixed") / "clean"
    result = fix_into(battery_report, out)
    return out, result, before


def test_fix_into_never_changes_the_source(
    battery: Path, fixed: tuple[Path, object, dict[str, str]]
) -> None:
    _, _, before = fixed
    assert tree_digest(battery) == before


def test_fix_into_output_passes_the_doctor(fixed: tuple[Path, object, dict[str, str]]) -> None:
    out, _, _ = fixed
    report = check_dataset(out, validation=0.0)
    assert report.ok
    # What a copy cannot change: a small image stays small, a grey one grey, classes uneven.
    assert {w.kind for w in report.warnings} == {"too small", "grey", "imbalance"}
    assert report.skipped == ()


def test_fix_into_files(battery: Path, fixed: tuple[Path, object, dict[str, str]]) -> None:
    out, _, _ = fixed
    assert sorted(tree_digest(out)) == sorted(
        [
            *GOOD_CATS,
            "cat/png_named.png",
            "cat/bmp_named.png",
            "cat/cmyk.jpg",
            "cat/deep.png",
            "cat/palette_alpha.png",
            "cat/rotated.jpg",
            "cat/anim.png",
            "cat/tiny.png",
            "cat/grey.png",
            "cat/dup_a.jpg",
            "dog/good0.jpg",
            "dog/good1.jpg",
            "bird/good0.jpg",
            "bird/good1.jpg",
        ]
    )
    # Unchanged files are byte-for-byte copies; a PNG named .jpg only changes its name.
    assert (out / "cat/good1.jpg").read_bytes() == (battery / "cat/good1.jpg").read_bytes()
    assert (out / "cat/png_named.png").read_bytes() == (battery / "cat/png_named.jpg").read_bytes()
    with Image.open(out / "cat/rotated.jpg") as image:
        assert image.size == (40, 48) and image.mode == "RGB"
        assert image.getexif().get(0x0112, 1) == 1
        upright = np.asarray(ImageOps.exif_transpose(Image.open(battery / "cat/rotated.jpg")))
        assert np.abs(np.asarray(image, np.int16) - upright).mean() < 3
    with Image.open(out / "cat/cmyk.jpg") as image:
        assert image.mode == "RGB"
    with Image.open(out / "cat/deep.png") as image:
        assert image.mode == "RGB"
    with Image.open(out / "cat/palette_alpha.png") as image:
        assert image.mode == "RGB" and "transparency" not in image.info
    with Image.open(out / "cat/anim.png") as image:
        assert getattr(image, "n_frames", 1) == 1 and image.getpixel((0, 0)) == (255, 0, 0)
    with Image.open(out / "cat/grey.png") as image:
        assert image.mode == "L"


def test_fix_into_result(battery: Path, fixed: tuple[Path, object, dict[str, str]]) -> None:
    from hubtransfer._doctor import FixResult

    out, result, _ = fixed
    assert isinstance(result, FixResult)
    actions = {a.source.relative_to(battery).as_posix(): a for a in result.actions}
    assert len(actions) == 23
    dropped = {name: a.reason for name, a in actions.items() if a.action == "dropped"}
    assert dropped == {
        "cat/zero.jpg": "unusable: is empty (0 bytes)",
        "cat/truncated.jpg": dropped["cat/truncated.jpg"],
        "cat/notes.jpg": dropped["cat/notes.jpg"],
        "cat/dup_b.jpg": "identical to 'cat/dup_a.jpg'",
        "dog/same_as_cat.jpg": "identical to 'cat/good0.jpg'",
    }
    converted = {name: a.reason for name, a in actions.items() if a.action == "converted"}
    assert converted == {
        "cat/bmp_named.jpg": "BMP to PNG; renamed from .jpg to .png",
        "cat/cmyk.jpg": "CMYK to RGB",
        "cat/deep.png": "16-bit to 8-bit",
        "cat/palette_alpha.png": "palette to RGB; transparency dropped",
        "cat/rotated.jpg": "EXIF orientation 6 applied",
        "cat/anim.gif": "GIF to PNG; renamed from .gif to .png",
    }
    assert actions["cat/png_named.jpg"].action == "copied"
    assert actions["cat/png_named.jpg"].reason == "renamed from .jpg to .png"
    assert actions["cat/png_named.jpg"].target == out / "cat/png_named.png"
    assert result.format().startswith(
        f"Wrote 18 images to {str(out)!r}: 12 copied, 6 converted; 5 dropped."
    )
    assert json.loads(json.dumps(result.to_json()))["dropped"] == 5


def test_fix_into_can_drop_small_images(
    battery: Path, battery_report: DatasetReport, tmp_path: Path
) -> None:
    result = fix_into(battery_report, tmp_path / "clean", drop_too_small=True)
    [small] = [a for a in result.dropped if a.source.name == "tiny.png"]
    assert small.reason == "too small (8 x 8 pixels, under 32)"
    assert {w.kind for w in check_dataset(tmp_path / "clean").warnings} <= {"grey", "imbalance"}


def test_fix_into_from_a_folder_and_name_clashes(tmp_path: Path) -> None:
    root = write_files(
        tmp_path / "data",
        {
            "a/x.jpg": encode(photo(1), "PNG"),
            "a/x.png": encode(photo(2), "PNG"),
            "b/1.jpg": jpeg(3),
        },
    )
    result = fix_into(root, tmp_path / "clean")
    targets = {a.source.name: a.target.name for a in result.actions if a.target is not None}
    assert targets == {"x.jpg": "x-2.png", "x.png": "x.png", "1.jpg": "1.jpg"}


def test_fix_into_refuses_unsafe_targets(
    battery: Path, battery_report: DatasetReport, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="only written to a new or empty folder"):
        fix_into(battery_report, full)
    with pytest.raises(InvalidParameterError, match="lies inside the data folder"):
        fix_into(battery_report, battery / "clean")
    with pytest.raises(InvalidParameterError, match="'jpeg_quality' parameter"):
        fix_into(battery_report, tmp_path / "x", jpeg_quality=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fix_into(battery_report, empty).out_dir == empty


def test_fix_into_notices_a_file_changed_since_the_check(tmp_path: Path) -> None:
    root = write_files(tmp_path / "data", {"a/1.jpg": jpeg(1), "b/1.jpg": jpeg(2)})
    report = check_dataset(root)
    (root / "b/1.jpg").write_bytes(jpeg(5))
    with pytest.raises(DatasetError, match=r"b/1\.jpg' changed since the data set was checked"):
        fix_into(report, tmp_path / "clean")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing half-written


# find_bad_images and screen_collection ----------------------------------------------------


@pytest.fixture
def mixed_files(tmp_path: Path) -> list[Path]:
    png = encode(photo(3), "PNG")
    files = write_files(
        tmp_path,
        {
            "good.jpg": jpeg(1),
            "good.png": png,
            "cut.png": png[: len(png) // 2],
            "cut.jpg": jpeg(2)[:400],
            "text.jpg": b"hello",
        },
    )
    return [files / name for name in ("good.jpg", "cut.png", "good.png", "cut.jpg", "text.jpg")] + [
        files / "missing.jpg"
    ]


def test_find_bad_images(mixed_files: list[Path]) -> None:
    bad = find_bad_images(mixed_files, workers=3)
    assert [(b.path.name, b.kind) for b in bad] == [
        ("cut.png", "damaged"),
        ("cut.jpg", "damaged"),
        ("text.jpg", "not an image"),
        ("missing.jpg", "missing"),
    ]
    assert find_bad_images(mixed_files[:1] + mixed_files[2:3]) == []
    assert find_bad_images([]) == []


def test_known_good_digests_are_not_decoded_again(mixed_files: list[Path]) -> None:
    cut = mixed_files[1]
    digest = hashlib.sha256(cut.read_bytes()).hexdigest()
    assert find_bad_images([cut], known_good={digest}) == []
    assert len(find_bad_images([cut], known_good=set())) == 1


def test_screen_collection_raise_lists_every_bad_file(mixed_files: list[Path]) -> None:
    collection = from_paths(mixed_files, ["a", "a", "b", "b", "b", "b"])
    with pytest.raises(ImageDecodeError) as info:
        screen_collection(collection, on_bad_image="raise")
    message = str(info.value)
    assert message.startswith("4 of 6 image files cannot be used for training:\n")
    for path in mixed_files[1:2] + mixed_files[3:]:
        assert repr(str(path)) in message
    assert "on_bad_image='skip'" in message and "--fix-into" in message


def test_screen_collection_skip_drops_them(mixed_files: list[Path]) -> None:
    collection = from_paths(mixed_files, ["a", "a", "b", "b", "b", "b"])
    kept, bad = screen_collection(collection, on_bad_image="skip")
    assert [p.name for p in kept.paths] == ["good.jpg", "good.png"]
    assert kept.classes == ("a", "b") and len(bad) == 4
    clean = from_paths(mixed_files[:1], ["a"])
    assert screen_collection(clean) == (clean, ())


def test_screen_collection_skip_refuses_to_empty_a_class(mixed_files: list[Path]) -> None:
    collection = from_paths(mixed_files, ["a", "b", "a", "b", "b", "b"])
    with pytest.raises(DatasetError, match=r"Every image of the classes \['b'\] is unusable"):
        screen_collection(collection, on_bad_image="skip")
    with pytest.raises(InvalidParameterError, match="'on_bad_image' parameter"):
        screen_collection(collection, on_bad_image="ignore")  # type: ignore[arg-type]


def test_bad_image_text() -> None:
    bad = BadImage(path=Path("a/b.jpg"), kind="empty", reason="is empty (0 bytes)")
    assert str(bad) == "'a/b.jpg' is empty (0 bytes)"
    assert bad.to_json() == {"path": "a/b.jpg", "kind": "empty", "reason": "is empty (0 bytes)"}


# Speed ------------------------------------------------------------------------------------


def test_the_check_decodes_on_several_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from hubtransfer import _doctor

    seen: set[int] = set()
    original = _doctor._Decoder.problem

    def record(self: _doctor._Decoder, data: bytes) -> str | None:
        seen.add(threading.get_ident())
        return original(self, data)

    monkeypatch.setattr(_doctor._Decoder, "problem", record)
    root = write_files(
        tmp_path / "data", {f"{c}/{i}.jpg": jpeg(i + 100 * ord(c)) for c in "ab" for i in range(20)}
    )
    assert check_dataset(root, workers=4).ok
    assert len(seen) > 1
    seen.clear()
    check_dataset(root, workers=1)
    assert seen == {threading.get_ident()}
