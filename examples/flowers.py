"""The flower story, end to end (needs the internet once, for the 3,670 flower photos).

1. An ImageNet classifier names flowers with ImageNet classes ("daisy" for a sunflower...).
2. A head trained on the five flower folders names them right.
3. Pictures: an 8x8 grid of images titled with the predictions (flowers-grid.png), the
   validation confusion matrix (flowers-confusion.png) and the training curves
   (flowers-curves.png).

The default backbone is the embedded, offline EfficientNet-Lite0; the photos (218 MB)
are downloaded once into ~/.keras/datasets, where Keras' own tutorial puts them. Any
feature-vector backbone works, e.g. --backbone mobilenet_v2_100_224_fv (from TF-Hub).
The features are cached, so a second run with other --epochs skips the backbone.

Run: python examples/flowers.py [--backbone NAME] [--epochs 10] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import tarfile
import urllib.request
from pathlib import Path

import hubtransfer

FLOWERS_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
)


def download_flowers(target: Path) -> Path:
    """Downloads and unpacks flower_photos.tgz once; returns the class-folder root."""
    root = target / "flower_photos"
    if root.is_dir():
        return root
    target.mkdir(parents=True, exist_ok=True)
    archive = target / "flower_photos.tgz"
    urllib.request.urlretrieve(FLOWERS_URL, archive)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default=hubtransfer.DEFAULT_BACKBONE)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", type=Path, default=Path.home() / ".keras" / "datasets")
    args = parser.parse_args()

    root = download_flowers(args.data)
    sample = sorted((root / "sunflowers").glob("*.jpg"))[:3]
    print("Before: an ImageNet classifier on sunflowers")
    for result in hubtransfer.classify(sample, top_k=1):
        print(f"  {Path(result.source).name}: {result.top.label} ({result.top.score:.0%})")

    model = hubtransfer.TransferClassifier(args.backbone, epochs=args.epochs).fit(root)
    print(model.validation_report_.format() if model.validation_report_ else "")
    print("After: the trained head on the same sunflowers")
    for path, label in zip(sample, model.predict(sample), strict=True):
        print(f"  {path.name}: {label}")

    model.save("flowers-model")
    hubtransfer.plot_folder_predictions(model, root, "flowers-grid.png", count=64)
    if model.validation_report_ is not None:
        hubtransfer.plot_confusion_matrix(
            model.validation_report_, "flowers-confusion.png", normalize="true"
        )
    hubtransfer.plot_training_curves(model.history_, "flowers-curves.png")
    print("Wrote flowers-model/, flowers-grid.png, flowers-confusion.png, flowers-curves.png.")


if __name__ == "__main__":
    main()
