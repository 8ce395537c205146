"""The estimator at its edges: labels as scikit-learn users write them, pickle, threads."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _hostile import FAST
from PIL import Image

import hubtransfer
from hubtransfer import ConcurrentFitError, DatasetError, TransferClassifier


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """24 images of two colours and their labels 0/1 (as read from a folder)."""
    folder = hubtransfer.testing.make_colour_folder(tmp_path_factory.mktemp("edges"), per_class=8)
    collection = hubtransfer.scan_image_folder(folder)
    keep = [i for i, label in enumerate(collection.labels) if label < 2]
    pixels = np.stack([np.asarray(Image.open(collection.paths[i]).convert("RGB")) for i in keep])
    return pixels, np.asarray([collection.labels[i] for i in keep])


def test_integer_labels_are_the_classes(
    tiny_backbone: hubtransfer.BackboneSpec, images: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels, labels = images
    y = np.where(labels == 0, 5, 6)
    model = TransferClassifier(tiny_backbone, validation_split=0.0, **FAST).fit(pixels, y)
    assert model.classes_.tolist() == [5, 6]
    assert model.predict_proba(pixels).shape == (len(y), 2)
    predicted = model.predict(pixels)
    assert predicted.dtype.kind == "i"
    assert (predicted == y).mean() >= 0.9
    assert model.score(pixels, y) >= 0.9
    with pytest.raises(DatasetError, match=r"The labels \[7\] are not among the model's classes"):
        model.score(pixels[:2], [5, 7])


def test_huge_integer_labels_cost_two_classes(
    tiny_backbone: hubtransfer.BackboneSpec, images: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels, labels = images
    y = np.where(labels == 0, 1_000_000, 0)
    model = TransferClassifier(tiny_backbone, **FAST).fit(pixels, y)
    assert model.classes_.tolist() == [0, 1_000_000]
    assert model.trainer_.head_.get_weights()[-1].shape == (2,)


def test_integer_classes_survive_save_and_load(
    tiny_backbone: hubtransfer.BackboneSpec, images: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    pixels, labels = images
    model = TransferClassifier(tiny_backbone, **FAST).fit(pixels, labels + 10)
    loaded = TransferClassifier.load(model.save(tmp_path / "m"))
    assert loaded.classes_.tolist() == [10, 11]
    np.testing.assert_array_equal(loaded.predict(pixels), model.predict(pixels))


def test_lists_of_arrays_generators_and_pairs_fit_like_an_array(
    tiny_backbone: hubtransfer.BackboneSpec, images: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels, labels = images
    names = np.asarray(["blue", "green"])[labels]
    reference = TransferClassifier(tiny_backbone, **FAST).fit(pixels, names).predict_proba(pixels)
    forms = {
        "list of arrays": (list(pixels), list(names)),
        "generator": ((image for image in pixels), (name for name in names)),
        "pairs": (iter(list(zip(pixels, names, strict=True))), None),
    }
    for form, (x, y) in forms.items():
        model = TransferClassifier(tiny_backbone, **FAST).fit(x, y)
        assert model.classes_.tolist() == ["blue", "green"], form
        np.testing.assert_allclose(model.predict_proba(pixels), reference, atol=1e-5, err_msg=form)


def test_a_fitted_model_pickles_through_its_saved_form(
    tiny_backbone: hubtransfer.BackboneSpec, images: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels, labels = images
    model = TransferClassifier(tiny_backbone, **FAST).fit(pixels, labels)
    copy = pickle.loads(pickle.dumps(model))
    # As after save and load: a registered spec comes back as its name.
    assert copy.get_params() == {**model.get_params(), "backbone": tiny_backbone.name}
    np.testing.assert_allclose(copy.predict_proba(pixels), model.predict_proba(pixels), atol=1e-6)
    unfitted = pickle.loads(pickle.dumps(TransferClassifier(tiny_backbone, epochs=3)))
    assert unfitted.epochs == 3 and not hasattr(unfitted, "classes_")


def test_a_second_fit_on_the_same_object_in_another_thread_is_refused(
    tiny_backbone: hubtransfer.BackboneSpec, images: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels, labels = images
    model = TransferClassifier(tiny_backbone, **FAST)
    inside, release = threading.Event(), threading.Event()

    def slow_images() -> Iterator[np.ndarray]:
        inside.set()  # the first fit is running: it is reading its data
        assert release.wait(60)
        yield from pixels

    errors: list[BaseException] = []

    def first() -> None:
        try:
            model.fit(slow_images(), list(labels))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(60)
        with pytest.raises(ConcurrentFitError, match="already running"):
            model.fit(pixels, labels)
    finally:
        release.set()
        thread.join(120)
    assert not thread.is_alive() and errors == []
    assert model.classes_.tolist() == [0, 1]
    assert model.score(pixels, labels) >= 0.9
    model.fit(pixels, labels)  # the guard is released when a fit ends
