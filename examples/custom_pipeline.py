"""A pipeline of your own from hubtransfer's parts, without the TransferClassifier facade.

``TransferClassifier`` is a convenience over parts that each work on their own.
This script wires them by hand, as you would to put them inside a larger system:

    Backbone      load_backbone(name)              a frozen hub.KerasLayer and its spec
    Preprocessor  Preprocessor.from_spec(spec)     decode, resize, scale: the spec's contract
    FeatureStore  FeatureStore.for_backbone(...)   features on disk, keyed by weights and files
    extract_features(backbone, preprocessor, paths, store=store)
    HeadTrainer   HeadTrainer(...).fit(x, y)       a Dense softmax head on any features
    LabelMap      LabelMap.from_folder(folder)     class names <-> columns, JSON round trip

It trains on the committed Fashion-MNIST sample, evaluates on its test folder,
asks for the features a second time to show that the store answers without the
backbone (the default store is the one ``TransferClassifier`` uses, in the cache
folder, so features another run extracted are reused; ``--store`` picks a folder),
decodes top-2 predictions with the label map, and joins backbone and head into
one ``tf_keras`` model (images in, probabilities out) that agrees with the parts.

Run (offline, 20-30 s on two CPU cores the first time):
    python examples/custom_pipeline.py [--store FOLDER]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import hubtransfer

DATA = Path(__file__).resolve().parent / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", type=Path, help="feature store folder (default: the cache's store)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        run(args.store, Path(scratch))


def run(store_folder: Path | None, scratch: Path) -> None:
    """Builds, trains and checks the pipeline; writes to the store and ``scratch``."""

    # 1. The parts. The preprocessing contract travels with the backbone's spec.
    backbone = hubtransfer.load_backbone("efficientnet_lite0_embedded_fv")
    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    # Keyed by the weights' content hash and the contract: other weights get another store.
    store = (
        hubtransfer.FeatureStore.for_backbone(backbone, preprocessor.contract)
        if store_folder is None
        else hubtransfer.FeatureStore(store_folder, feature_dim=backbone.output_dim)
    )
    labels = hubtransfer.LabelMap.from_folder(DATA / "fashion-mnist-sample")
    print(f"{backbone!r}: {preprocessor.contract.input_size} in, {backbone.output_dim} out")
    print(f"{len(labels)} classes: {', '.join(labels.classes)}")

    # 2. Data: a stratified, seeded split of the class folders.
    collection = hubtransfer.scan_image_folder(
        DATA / "fashion-mnist-sample", classes=labels.classes
    )
    split = hubtransfer.stratified_split(collection, validation=0.2, seed=0)
    test = hubtransfer.scan_image_folder(DATA / "fashion-mnist-sample-test", classes=labels.classes)

    # 3. Features, once per image; each chunk is saved to the store as soon as it is done.
    def features(part: hubtransfer.ImageCollection) -> np.ndarray:
        return hubtransfer.extract_features(
            backbone, preprocessor, part.paths, store=store, verbose=False
        )

    every_path = [*collection.paths, *test.paths]
    missing = len(store.missing([hubtransfer.file_digest(path) for path in every_path]))
    started = time.perf_counter()
    train_x, validation_x, test_x = (
        features(split.train),
        features(split.validation),
        features(test),
    )
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = features(test)
    second = time.perf_counter() - started
    assert np.array_equal(again, test_x)
    print(
        f"Features of {len(every_path)} images: {missing} needed the backbone ({first:.1f} s); "
        f"the {len(test)} test images again, all from the store: {second * 1000:.0f} ms"
    )

    # 4. The head, trained on features: any [n, d] array works here.
    trainer = hubtransfer.HeadTrainer(epochs=40, dropout=0.2, seed=0, verbose=0)
    trainer.fit(
        train_x,
        np.asarray(split.train.labels),
        n_classes=len(labels),
        validation_data=(validation_x, np.asarray(split.validation.labels)),
    )
    # Early stopping restored the weights of the epoch with the lowest validation loss.
    validation_accuracy = np.mean(
        trainer.predict_proba(validation_x).argmax(axis=1) == np.asarray(split.validation.labels)
    )
    print(
        f"Head: {len(trainer.history_['loss'])} epochs, "
        f"validation accuracy {validation_accuracy:.0%}"
    )

    # 5. Evaluate, and decode the first test images with the label map.
    probabilities = trainer.predict_proba(test_x)
    report = hubtransfer.evaluation_report(test.labels, probabilities, labels.classes)
    print(f"Test accuracy {report.accuracy:.1%} on {report.n_samples} images")
    for path, top in zip(test.paths[::25], labels.top_k(probabilities[::25], k=2), strict=True):
        guesses = ", ".join(f"{p.label} {p.score:.0%}" for p in top)
        print(f"  {path.parent.name}/{path.name}: {guesses}")

    # 6. One tf_keras model, preprocessed images in: the same answers as the parts.
    combined = trainer.combine(backbone)
    pixels = preprocessor.batch(list(test.paths[:8]))
    end_to_end = combined.predict(pixels, verbose=0)
    assert np.allclose(end_to_end, probabilities[:8], atol=1e-3)
    label_file = labels.save(scratch / "labels.json")
    assert hubtransfer.LabelMap.load(label_file) == labels
    print("The combined Keras model agrees with backbone + head; the label map round-trips.")


if __name__ == "__main__":
    main()
