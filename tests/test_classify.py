"""ImageNet classification (hubtransfer/_classify.py): real photos, every input kind, labels.

The slow tests run the real embedded EfficientNet-Lite0 classifier (converted
once per session) on photos that ship with scikit-image. The fast ones use a
tiny 1001-logit classifier laid out like TF-Hub's ImageNet classifiers
(``background`` in column 0).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import (
    DEFAULT_BACKBONE,
    DEFAULT_CLASSIFIER,
    Classification,
    ImageClassifier,
    ImageDecodeError,
    InvalidParameterError,
)
from hubtransfer.testing import tiny_spec

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat"}
TINY_LOGITS = "tiny_classify_imagenet_logits"
TINY_FV = "tiny_classify_fv"


def skimage_photo(name: str) -> Path:
    """A photo from scikit-image's data folder (found without importing scikit-image)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-image is not installed")
    path = Path(spec.origin).parent / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-image ships no {name}")
    return path


def pixels(path: Path) -> np.ndarray[Any, Any]:
    """The photo as a uint8 RGB array, decoded by Pillow."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def write_images(folder: Path, count: int, *, size: tuple[int, int] = (40, 28)) -> list[Path]:
    """Noise images of different seeds, alternately PNG and JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"noise_{seed}.{'png' if seed % 2 == 0 else 'jpg'}"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def assert_same_classification(
    first: Classification, second: Classification, *, tolerance: float = 1e-5
) -> None:
    assert [p.label for p in first.predictions] == [p.label for p in second.predictions]
    assert [p.index for p in first.predictions] == [p.index for p in second.predictions]
    np.testing.assert_allclose(
        [p.score for p in first.predictions], [p.score for p in second.predictions], atol=tolerance
    )


# --- The embedded classifier on real photos (slow) ----------------------------------------


@pytest.fixture(scope="module")
def classifier() -> ImageClassifier:
    """The default embedded classifier, loaded once for this module."""
    return ImageClassifier()


@pytest.fixture(scope="module")
def chelsea() -> Path:
    return skimage_photo("chelsea.png")


@pytest.fixture(scope="module")
def coffee() -> Path:
    return skimage_photo("coffee.png")


@pytest.mark.slow
def test_classify_recognises_a_cat_and_an_espresso(chelsea: Path, coffee: Path) -> None:
    results = hubtransfer.classify([chelsea, str(coffee)], top_k=3)
    assert [result.source for result in results] == [str(chelsea), str(coffee)]
    cat, cup = results
    assert cat.top.label in CAT_LABELS, cat.predictions
    assert cup.top.label == "espresso", cup.predictions
    assert all(len(result.predictions) == 3 for result in results)


@pytest.mark.slow
def test_the_default_classifier_is_the_embedded_one(classifier: ImageClassifier) -> None:
    assert classifier.backbone.spec.name == DEFAULT_CLASSIFIER
    assert classifier.labels == hubtransfer.LabelMap.imagenet(background=False)
    assert classifier.background is False


@pytest.mark.slow
def test_a_path_bytes_and_an_array_of_one_photo_classify_alike(
    classifier: ImageClassifier, chelsea: Path
) -> None:
    array = pixels(chelsea)
    assert array.dtype == np.uint8
    encoded = chelsea.read_bytes()
    [from_str] = classifier(str(chelsea))
    [from_path] = classifier(chelsea)
    [from_bytes] = classifier(encoded)
    [from_array] = classifier(array)
    assert from_str.source == from_path.source == str(chelsea)
    assert from_bytes.source == "<bytes 0>"
    assert from_array.source == "<array 0>"
    assert from_str.top.label in CAT_LABELS
    for other in (from_path, from_bytes, from_array):
        assert_same_classification(from_str, other)
    # Mixed in one list: same results, sources name each item's kind and position.
    mixed = classifier([array, str(chelsea), encoded])
    assert [result.source for result in mixed] == ["<array 0>", str(chelsea), "<bytes 2>"]
    for result in mixed:
        assert_same_classification(from_str, result)


@pytest.mark.slow
def test_top_k_is_respected(classifier: ImageClassifier, coffee: Path) -> None:
    array = pixels(coffee)
    for top_k in (1, 2, 7):
        [result] = classifier(array, top_k=top_k)
        assert len(result.predictions) == top_k
        assert result.top.label == "espresso"
    # More than the 1000 classes is clamped to all of them.
    [everything] = classifier(array, top_k=5000)
    assert len(everything.predictions) == 1000
    assert len({p.label for p in everything.predictions}) == 1000


@pytest.mark.slow
def test_scores_are_probabilities_best_first(classifier: ImageClassifier, coffee: Path) -> None:
    [result] = classifier(pixels(coffee), top_k=1000)
    scores = np.array([p.score for p in result.predictions])
    assert np.all(scores >= 0.0) and np.all(scores <= 1.0)
    assert np.all(np.diff(scores) <= 0.0)
    assert scores.sum() <= 1.0 + 1e-5
    # The embedded classifier has no background column: all 1000 classes sum to one.
    assert scores.sum() == pytest.approx(1.0, abs=1e-4)
    assert all(classifier.labels.name(p.index) == p.label for p in result.predictions)


@pytest.mark.slow
def test_a_feature_vector_name_with_a_companion_uses_its_classifier() -> None:
    spec = hubtransfer.get_backbone_spec(DEFAULT_BACKBONE)
    assert spec.output_kind == "feature_vector" and spec.companion == DEFAULT_CLASSIFIER
    classifier = ImageClassifier(DEFAULT_BACKBONE)
    assert classifier.backbone.spec.name == DEFAULT_CLASSIFIER
    assert classifier.backbone.spec.output_kind == "classification"


# --- A tiny 1001-logit ImageNet-style classifier (fast) -----------------------------------


@pytest.fixture(scope="module")
def tiny_specs(tiny_models: dict[str, Path]) -> Iterator[dict[str, hubtransfer.BackboneSpec]]:
    """The tiny classifier (offset 1, ImageNet labels) and a feature vector naming it."""
    logits = tiny_spec(
        tiny_models["logits"],
        name=TINY_LOGITS,
        output="classification",
        output_dim=1001,
        label_offset=1,
        label_set="imagenet",
    )
    fv = dataclasses.replace(tiny_spec(tiny_models["fv"], name=TINY_FV), companion=TINY_LOGITS)
    registry = hubtransfer.default_registry()
    registry.register(logits)
    registry.register(fv)
    try:
        yield {"logits": logits, "fv": fv}
    finally:
        registry.unregister(TINY_LOGITS)
        registry.unregister(TINY_FV)


@pytest.fixture(scope="module")
def tiny_classifier(tiny_specs: dict[str, hubtransfer.BackboneSpec]) -> ImageClassifier:
    return ImageClassifier(TINY_LOGITS)


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("noise"), 6)


def test_the_tiny_classifier_uses_the_1001_wide_imagenet_labels(
    tiny_classifier: ImageClassifier,
) -> None:
    labels = tiny_classifier.labels
    assert labels.offset == 1 and labels.width == 1001
    assert labels.offset_names == ("background",)
    assert tiny_classifier.preprocessor.output_shape == (32, 32, 3)


def test_background_is_never_predicted_by_default(
    tiny_classifier: ImageClassifier, noise: list[Path]
) -> None:
    results = tiny_classifier(noise, top_k=1001)
    for result in results:
        labels = [p.label for p in result.predictions]
        assert "background" not in labels
        assert len(labels) == 1000  # every class, but not the background column
        assert all(p.index >= 0 for p in result.predictions)
        # Probabilities over all 1001 columns: without background they sum below one.
        assert sum(p.score for p in result.predictions) < 1.0


def test_background_may_be_predicted_when_asked_for(
    tiny_specs: dict[str, hubtransfer.BackboneSpec], noise: list[Path]
) -> None:
    classifier = ImageClassifier(TINY_LOGITS, background=True)
    results = classifier(noise, top_k=1001)
    for result in results:
        labels = {p.label for p in result.predictions}
        assert "background" in labels
        assert len(labels) == 1001
        [background] = [p for p in result.predictions if p.label == "background"]
        assert background.index == -1
        assert sum(p.score for p in result.predictions) == pytest.approx(1.0, abs=1e-4)
    # Through the one-call function too.
    [result] = hubtransfer.classify(noise[0], backbone=TINY_LOGITS, top_k=1001, background=True)
    assert "background" in {p.label for p in result.predictions}


def test_results_follow_the_input_order(
    tiny_classifier: ImageClassifier, noise: list[Path]
) -> None:
    together = tiny_classifier(noise, top_k=3, batch_size=4)
    assert [result.source for result in together] == [str(path) for path in noise]
    for path, result in zip(noise, together, strict=True):
        [alone] = tiny_classifier(path, top_k=3)
        assert_same_classification(alone, result)


def test_a_feature_vector_spec_with_a_companion_uses_the_companion(
    tiny_specs: dict[str, hubtransfer.BackboneSpec],
) -> None:
    by_name = ImageClassifier(TINY_FV)
    assert by_name.backbone.spec == tiny_specs["logits"]
    by_spec = ImageClassifier(tiny_specs["fv"])
    assert by_spec.backbone.spec == tiny_specs["logits"]
    loaded = hubtransfer.load_backbone(tiny_specs["fv"])
    assert ImageClassifier(loaded).backbone.spec == tiny_specs["logits"]


def test_a_feature_vector_spec_without_a_companion_is_refused(
    tiny_models: dict[str, Path],
) -> None:
    spec = tiny_spec(tiny_models["fv"], name="tiny_lonely_fv")
    assert spec.companion is None
    with pytest.raises(InvalidParameterError, match="'tiny_lonely_fv' outputs feature vectors"):
        ImageClassifier(spec)
    with pytest.raises(InvalidParameterError, match="classification backbone"):
        hubtransfer.classify(np.zeros((8, 8, 3), np.uint8), backbone=spec)


@pytest.mark.parametrize("top_k", [0, -1, True, 2.5, "3", None])
def test_a_bad_top_k_is_refused(
    tiny_classifier: ImageClassifier, noise: list[Path], top_k: Any
) -> None:
    with pytest.raises(InvalidParameterError, match="'top_k' parameter") as caught:
        tiny_classifier(noise[0], top_k=top_k)
    assert repr(top_k) in str(caught.value)


@pytest.mark.parametrize("empty", [[], ()])
def test_no_images_give_no_results(tiny_classifier: ImageClassifier, empty: Any) -> None:
    assert tiny_classifier(empty) == []


def test_a_file_that_is_not_an_image_is_named(
    tiny_classifier: ImageClassifier, noise: list[Path], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping list: milk, eggs\n")
    with pytest.raises(ImageDecodeError) as caught:
        tiny_classifier([noise[0], notes])
    assert str(notes) in str(caught.value)
    with pytest.raises(ImageDecodeError, match=r"notes\.jpg"):
        hubtransfer.classify(str(notes), backbone=TINY_LOGITS)


def test_a_classification_is_json_serialisable(
    tiny_classifier: ImageClassifier, noise: list[Path]
) -> None:
    [result] = tiny_classifier(noise[1], top_k=2)
    data = json.loads(json.dumps(result.to_json()))
    assert data["source"] == str(noise[1])
    assert [p["label"] for p in data["predictions"]] == [p.label for p in result.predictions]
    assert [p["index"] for p in data["predictions"]] == [p.index for p in result.predictions]
    assert result.top == result.predictions[0]
