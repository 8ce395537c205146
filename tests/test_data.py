"""Image collections: folder scans, lists, stratified splits and split manifests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hubtransfer import DatasetError, InvalidParameterError
from hubtransfer._data import (
    IMAGE_EXTENSIONS,
    DataSplit,
    ImageCollection,
    SkippedFile,
    _split_counts,
    from_paths,
    scan_image_folder,
    stratified_split,
)


def _image(path: Path, *, value: int = 0) -> Path:
    """Writes a real 4x4 image; the format follows the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF", ".bmp": "BMP"}
    image.save(path, format=fmt[path.suffix.lower()])
    return path


def _text(path: Path, text: str = "not an image") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- scan_image_folder ---------------------------------------------------------------------


def test_scan_sorts_classes_and_files(tmp_path: Path) -> None:
    for name in ("zebra/b.png", "zebra/a.png", "ant/2.jpg", "ant/1.jpg", "Bee/x.bmp"):
        _image(tmp_path / name)
    data = scan_image_folder(tmp_path)
    # Code-point order, as Keras sorts: upper case before lower case.
    assert data.classes == ("Bee", "ant", "zebra")
    assert data.n_classes == 3
    assert [p.relative_to(tmp_path).as_posix() for p in data.paths] == [
        "Bee/x.bmp",
        "ant/1.jpg",
        "ant/2.jpg",
        "zebra/a.png",
        "zebra/b.png",
    ]
    assert data.labels == (0, 1, 1, 2, 2)
    assert data.root == tmp_path
    assert data.class_counts() == {"Bee": 1, "ant": 2, "zebra": 2}
    assert data.label_names == ("Bee", "ant", "ant", "zebra", "zebra")
    assert data.skipped == ()


def test_scan_is_case_insensitive_about_extensions(tmp_path: Path) -> None:
    for name in ("a/1.JPG", "a/2.Jpeg", "a/3.PNG", "a/4.gif", "b/5.BMP"):
        _image(tmp_path / name)
    data = scan_image_folder(tmp_path)
    assert len(data) == 5
    assert {p.suffix.lower() for p in data.paths} <= IMAGE_EXTENSIONS


def test_scan_skips_hidden_and_non_images_and_records_why(tmp_path: Path) -> None:
    _image(tmp_path / "cat" / "1.png")
    _image(tmp_path / "cat" / ".hidden.png")
    _text(tmp_path / "cat" / ".DS_Store")
    _image(tmp_path / "cat" / ".thumbs" / "t.png")
    _image(tmp_path / "cat" / ".thumbs" / "u.png")
    _text(tmp_path / "cat" / "notes.txt")
    _image(tmp_path / "dog" / "1.jpg")
    _image(tmp_path / ".cache" / "x" / "1.png")
    _text(tmp_path / "README.md")
    data = scan_image_folder(tmp_path)
    assert data.classes == ("cat", "dog")
    assert len(data) == 2
    reasons = {p.relative_to(tmp_path).as_posix(): s for p, s in _skips(data.skipped)}
    assert reasons == {
        ".cache": "hidden",
        "README.md": "outside class folders",
        "cat/.thumbs": "hidden",  # recorded once, not searched
        "cat/.DS_Store": "hidden",
        "cat/.hidden.png": "hidden",
        "cat/notes.txt": "not an image",
    }
    assert sum(s.reason == "hidden" for s in data.skipped) == 4


def _skips(skipped: tuple[SkippedFile, ...]) -> list[tuple[Path, str]]:
    return [(s.path, s.reason) for s in skipped]


def test_scan_searches_class_folders_recursively(tmp_path: Path) -> None:
    _image(tmp_path / "cat" / "b.png")
    _image(tmp_path / "cat" / "2021" / "a.png")
    _image(tmp_path / "cat" / "2021" / "deep" / "c.png")
    _image(tmp_path / "dog" / "x" / "y" / "z.png")
    data = scan_image_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in data.paths] == [
        "cat/2021/a.png",
        "cat/2021/deep/c.png",
        "cat/b.png",
        "dog/x/y/z.png",
    ]


def test_scan_with_given_classes_uses_their_order(tmp_path: Path) -> None:
    _image(tmp_path / "cat" / "1.png")
    _image(tmp_path / "dog" / "1.png")
    data = scan_image_folder(tmp_path, classes=["dog", "bird", "cat"])
    assert data.classes == ("dog", "bird", "cat")
    assert data.labels == (0, 2)  # files follow the given class order
    assert data.class_counts() == {"dog": 1, "bird": 0, "cat": 1}


def test_scan_with_given_classes_refuses_unknown_folders(tmp_path: Path) -> None:
    _image(tmp_path / "cat" / "1.png")
    _image(tmp_path / "cow" / "1.png")
    with pytest.raises(DatasetError, match=r"\['cow'\].*not among the classes"):
        scan_image_folder(tmp_path, classes=["cat", "dog"])


@pytest.mark.parametrize("classes", ["cat", ["cat", "cat"], ["cat", ""], [1, 2]])
def test_scan_refuses_bad_classes_argument(tmp_path: Path, classes: object) -> None:
    _image(tmp_path / "cat" / "1.png")
    with pytest.raises((InvalidParameterError, DatasetError), match="classes"):
        scan_image_folder(tmp_path, classes=classes)  # type: ignore[arg-type]


def test_scan_single_class_is_allowed(tmp_path: Path) -> None:
    _image(tmp_path / "only" / "1.png")
    assert scan_image_folder(tmp_path).n_classes == 1


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    _image(tmp_path / "cat" / "1.png")
    _text(tmp_path / "dog" / "notes.txt")
    with pytest.raises(DatasetError, match=r"'.*dog' holds no images \(1 other files skipped\)"):
        scan_image_folder(tmp_path)


def test_images_in_root_say_to_use_sub_folders(tmp_path: Path) -> None:
    _image(tmp_path / "1.png")
    _image(tmp_path / "2.PNG")
    with pytest.raises(DatasetError, match="holds 2 images but no class sub-folders") as error:
        scan_image_folder(tmp_path)
    assert "own sub-folder" in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_folder_without_sub_folders(tmp_path: Path) -> None:
    _text(tmp_path / "notes.txt")
    with pytest.raises(DatasetError, match="holds no class sub-folders"):
        scan_image_folder(tmp_path)


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="does not exist") as error:
        scan_image_folder(missing)
    assert str(missing) in str(error.value)


def test_root_is_a_file(tmp_path: Path) -> None:
    file = _image(tmp_path / "1.png")
    with pytest.raises(DatasetError, match="is a file, not a folder"):
        scan_image_folder(file)


def test_scan_accepts_str_root(tmp_path: Path) -> None:
    _image(tmp_path / "a" / "1.png")
    assert scan_image_folder(str(tmp_path)).root == tmp_path


# --- ImageCollection and from_paths ---------------------------------------------------------


def test_from_paths_with_names_and_ints() -> None:
    by_name = from_paths(["a.png", "b.png", "c.png"], ["dog", "cat", "dog"])
    assert by_name.classes == ("cat", "dog")
    assert by_name.labels == (1, 0, 1)
    by_int = from_paths(["a.png", "b.png"], [np.int64(1), 0], classes=["x", "y"])
    assert by_int.labels == (1, 0)
    assert type(by_int.labels[0]) is int
    assert from_paths(["a.png", "b.png"], [2, 0]).classes == ("0", "1", "2")
    assert from_paths(["a.png"], ["cat"], classes=["dog", "cat"]).labels == (1,)


@pytest.mark.parametrize(
    ("paths", "labels", "classes", "message"),
    [
        ([], [], None, "no paths"),
        (["a.png", "b.png"], ["cat"], None, "2 paths but 1 labels"),
        (["a.png"], ["cow"], ["cat", "dog"], r"\['cow'\] .* not among the classes"),
        (["a.png"], [2], ["cat", "dog"], r"\[2\] .* out of range"),
        (["a.png"], [-1], None, "negative label"),
        (["a.png", "b.png"], ["cat", 1], None, "all class names .* or all ints"),
        (["a.png"], [True], None, "all class names .* or all ints"),
        (["a.png", "a.png"], ["cat", "dog"], None, "more than once"),
        ("a.png", ["cat"], None, "not a single path"),
    ],
)
def test_from_paths_errors(paths: object, labels: object, classes: object, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        from_paths(paths, labels, classes=classes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": (0,)}, "2 paths but 1 labels"),
        ({"labels": (0, 2)}, r"is 2, .* \[0, 2\)"),
        ({"labels": (0, -1)}, "is -1"),
        ({"classes": ("a", "a")}, "more than once"),
        ({"paths": [Path("a"), Path("b")]}, "must be a tuple"),
        ({"paths": ("a", "b")}, "pathlib.Path"),
        ({"paths": (Path("a"), Path("a"))}, "more than once"),
    ],
)
def test_image_collection_validation(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "paths": (Path("a"), Path("b")),
        "labels": (0, 1),
        "classes": ("a", "b"),
    }
    fields.update(changes)
    with pytest.raises(DatasetError, match=message):
        ImageCollection(**fields)  # type: ignore[arg-type]


def test_subset_keeps_order_and_classes() -> None:
    data = from_paths(["a", "b", "c", "d"], ["x", "y", "x", "y"], root="/data")
    part = data.subset([3, 0])
    assert part.paths == (Path("a"), Path("d"))
    assert part.classes == data.classes
    assert part.root == Path("/data")
    assert len(data.subset([])) == 0
    with pytest.raises(InvalidParameterError, match=r"\[0, 4\)"):
        data.subset([4])


# --- stratified_split -----------------------------------------------------------------------


def _fake(counts: list[int], *, root: str | None = "/data") -> ImageCollection:
    paths: list[str] = []
    labels: list[int] = []
    for label, count in enumerate(counts):
        paths += [f"class{label}/{i:03}.png" for i in range(count)]
        labels += [label] * count
    if root is not None:
        paths = [f"{root}/{p}" for p in paths]
    return from_paths(paths, labels, classes=[f"class{i}" for i in range(len(counts))], root=root)


@pytest.mark.parametrize(
    ("n", "validation", "test", "expected"),
    [
        (1, 0.2, 0.1, (1, 0, 0)),
        (2, 0.2, 0.1, (1, 1, 0)),
        (3, 0.2, 0.1, (1, 1, 1)),
        (2, 0.0, 0.3, (1, 0, 1)),
        (10, 0.2, 0.1, (7, 2, 1)),
        (10, 0.25, 0.0, (7, 3, 0)),  # 2.5 rounds half up
        (10, 0.0, 0.0, (10, 0, 0)),
        (4, 0.45, 0.45, (1, 2, 1)),  # over-asked: test gives way first
        (2, 0.9, 0.0, (1, 1, 0)),
    ],
)
def test_split_counts_rule(
    n: int, validation: float, test: float, expected: tuple[int, int, int]
) -> None:
    assert _split_counts(n, validation=validation, test=test) == expected


def test_split_example_counts() -> None:
    split = stratified_split(_fake([10, 20]), validation=0.2, test=0.1, seed=0)
    assert split.train.class_counts() == {"class0": 7, "class1": 14}
    assert split.validation.class_counts() == {"class0": 2, "class1": 4}
    assert split.test.class_counts() == {"class0": 1, "class1": 2}
    assert split.classes == ("class0", "class1")


def test_split_does_not_depend_on_input_order() -> None:
    data = _fake([7, 9, 4])
    reverse = list(range(len(data)))[::-1]
    shuffled = ImageCollection(
        paths=tuple(data.paths[i] for i in reverse),
        labels=tuple(data.labels[i] for i in reverse),
        classes=data.classes,
        root=data.root,
    )
    a = stratified_split(data, validation=0.3, test=0.2, seed=5)
    b = stratified_split(shuffled, validation=0.3, test=0.2, seed=5)
    for name in ("train", "validation", "test"):
        assert set(getattr(a, name).paths) == set(getattr(b, name).paths)


def test_split_does_not_depend_on_root_location() -> None:
    a = stratified_split(_fake([12, 5], root="/old/place"), validation=0.25, seed=3)
    b = stratified_split(_fake([12, 5], root="/new/place"), validation=0.25, seed=3)
    assert [p.name for p in a.validation.paths] == [p.name for p in b.validation.paths]


def test_split_of_one_class_ignores_other_classes() -> None:
    a = stratified_split(_fake([20, 5]), validation=0.2, test=0.2, seed=1)
    b = stratified_split(_fake([20, 11, 3]), validation=0.2, test=0.2, seed=1)
    assert [p for p in a.test.paths if p.parent.name == "class0"] == [
        p for p in b.test.paths if p.parent.name == "class0"
    ]


def test_changing_validation_keeps_test() -> None:
    data = _fake([30, 17])
    assert (
        stratified_split(data, validation=0.1, test=0.2, seed=2).test
        == stratified_split(data, validation=0.3, test=0.2, seed=2).test
    )


def test_different_seeds_differ() -> None:
    data = _fake([50, 50])
    a = stratified_split(data, seed=0)
    b = stratified_split(data, seed=1)
    assert a.validation.paths != b.validation.paths


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validation": 1.0}, "'validation' .* in \\[0, 1\\)"),
        ({"validation": -0.1}, "'validation'"),
        ({"test": float("nan")}, "'test'"),
        ({"validation": 0.6, "test": 0.4}, "add up to less than 1"),
        ({"seed": -1}, "'seed' .* non-negative int"),
        ({"seed": 1.5}, "'seed'"),
        ({"validation": True}, "'validation'"),
    ],
)
def test_split_parameter_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        stratified_split(_fake([5, 5]), **kwargs)  # type: ignore[arg-type]


def test_split_of_empty_collection() -> None:
    empty = ImageCollection(paths=(), labels=(), classes=("a", "b"))
    with pytest.raises(DatasetError, match="empty"):
        stratified_split(empty)


def test_data_split_refuses_shared_files() -> None:
    data = _fake([3, 3])
    with pytest.raises(DatasetError, match="both the 'train' and 'test' parts"):
        DataSplit(
            train=data,
            validation=data.subset([]),
            test=data.subset([0]),
            seed=0,
            validation_fraction=0.0,
            test_fraction=0.2,
        )


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=2, max_size=6),
    validation=st.floats(0.0, 0.6),
    test=st.floats(0.0, 0.35),
    seed=st.integers(0, 2**32),
)
def test_split_properties(counts: list[int], validation: float, test: float, seed: int) -> None:
    data = _fake(counts)
    split = stratified_split(data, validation=validation, test=test, seed=seed)
    parts = (split.train, split.validation, split.test)
    # Disjoint and covering.
    assert sum(len(part) for part in parts) == len(data)
    assert set().union(*(set(part.paths) for part in parts)) == set(data.paths)
    # Stratified: per class, each part's share is the asked fraction up to rounding and the
    # minimum-one rules (at most 1.5 files off), and the guarantees hold.
    for name, n in zip(data.classes, counts, strict=True):
        n_train = split.train.class_counts()[name]
        n_validation = split.validation.class_counts()[name]
        n_test = split.test.class_counts()[name]
        assert n_train + n_validation + n_test == n
        assert n_train >= 1
        assert abs(n_validation - n * validation) <= 1.5
        assert abs(n_test - n * test) <= 1.5
        if n >= 2 and validation > 0:
            assert n_validation >= 1
        if n >= 3 and test > 0:
            assert n_test >= 1
        if validation == 0:
            assert n_validation == 0
        if test == 0:
            assert n_test == 0
    # Each part keeps the collection's order.
    for part in parts:
        order = [data.paths.index(path) for path in part.paths]
        assert order == sorted(order)
    # Reproducible.
    assert stratified_split(data, validation=validation, test=test, seed=seed) == split


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=2, max_size=6),
    validation=st.floats(0.0, 0.5),
    test=st.floats(0.0, 0.4),
    seed=st.integers(0, 1000),
    root=st.sampled_from([None, "/data/set"]),
)
def test_manifest_json_round_trip(
    counts: list[int], validation: float, test: float, seed: int, root: str | None
) -> None:
    split = stratified_split(_fake(counts, root=root), validation=validation, test=test, seed=seed)
    manifest = json.loads(json.dumps(split.to_json(fingerprints=False)))
    assert DataSplit.from_json(manifest, verify=False) == split
    if root is not None:
        assert all(not entry["path"].startswith("/") for entry in manifest["subsets"]["train"])
        moved = DataSplit.from_json(manifest, root="/elsewhere", verify=False)
        assert moved.test.paths == tuple(
            Path("/elsewhere") / p.relative_to(root) for p in split.test.paths
        )


# --- manifests on disk ----------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for label, name in enumerate(("cat", "dog", "eel")):
        for i in range(6):
            _image(root / name / f"{i}.png", value=40 * label + i)
    return root


def test_manifest_save_and_load(image_folder: Path, tmp_path: Path) -> None:
    split = stratified_split(scan_image_folder(image_folder), validation=0.2, test=0.2, seed=4)
    manifest = split.save(tmp_path / "out" / "split.json")
    assert manifest.is_file()
    assert [p.name for p in manifest.parent.iterdir()] == ["split.json"]  # no temp file left
    data = json.loads(manifest.read_text())
    assert data["format"] == "hubtransfer.split"
    assert data["root"] == str(image_folder)
    entry = data["subsets"]["test"][0]
    assert set(entry) == {"path", "label", "size", "sha256"}
    assert entry["path"].startswith(entry["label"] + "/")
    assert entry["size"] == (image_folder / entry["path"]).stat().st_size
    assert len(entry["sha256"]) == 64
    assert DataSplit.load(manifest) == split


def test_manifest_follows_a_moved_folder(image_folder: Path, tmp_path: Path) -> None:
    split = stratified_split(scan_image_folder(image_folder), validation=0.3, seed=0)
    manifest = split.save(tmp_path / "split.json")
    moved = image_folder.rename(tmp_path / "moved")
    with pytest.raises(DatasetError, match="pass root= its new location"):
        DataSplit.load(manifest)
    loaded = DataSplit.load(manifest, root=moved)
    assert loaded.validation.paths == tuple(
        moved / p.relative_to(image_folder) for p in split.validation.paths
    )
    assert loaded.train.root == moved


def test_verify_detects_changed_and_missing_files(image_folder: Path, tmp_path: Path) -> None:
    split = stratified_split(scan_image_folder(image_folder), validation=0.2, test=0.2, seed=4)
    manifest = split.save(tmp_path / "split.json")
    missing, resized, altered = split.test.paths[:3]
    missing.unlink()
    _text(resized, "x" * 3)
    # Same size, different bytes: only the SHA-256 can tell.
    content = bytearray(altered.read_bytes())
    content[-5] ^= 0xFF
    altered.write_bytes(bytes(content))
    with pytest.raises(DatasetError) as error:
        DataSplit.load(manifest)
    message = str(error.value)
    assert "3 of the 18 files" in message
    assert f"{str(missing)!r} is missing" in message
    assert f"{str(resized)!r} changed size" in message
    assert f"{str(altered)!r} changed content" in message
    assert str(manifest) in message
    assert DataSplit.load(manifest, verify=False) == split


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Cannot read the split manifest"):
        DataSplit.load(tmp_path / "none.json")
    broken = _text(tmp_path / "broken.json", "{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        DataSplit.load(broken)
    wrong = _text(tmp_path / "wrong.json", json.dumps({"format": "other"}))
    with pytest.raises(DatasetError, match="'format' is 'other'"):
        DataSplit.load(wrong)
    listed = _text(tmp_path / "list.json", "[]")
    with pytest.raises(DatasetError, match="JSON object"):
        DataSplit.load(listed)


def test_fingerprints_need_the_files() -> None:
    split = stratified_split(_fake([3, 3], root="/no/such/folder"), seed=0)
    with pytest.raises(DatasetError, match="fingerprints=False"):
        split.to_json()


def test_fractions_are_recorded() -> None:
    split = stratified_split(_fake([5, 5]), validation=0.4, test=0.2, seed=9)
    data = split.to_json(fingerprints=False)
    assert (data["seed"], data["validation_fraction"], data["test_fraction"]) == (9, 0.4, 0.2)
    assert math.isclose(split.validation_fraction, 0.4)
