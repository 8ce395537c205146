"""The flower story, end to end (needs the internet for the data and a TF-Hub backbone).

1. An ImageNet classifier names flowers with ImageNet classes ("daisy" for a sunflower...).
2. A head trained on the five flower folders names them right.
3. An 8x8 grid of validation images titled with the predictions is written to flowers-grid.png.

Run: python examples/flowers.py [--backbone mobilenet_v2_100_224_fv] [--epochs 10]
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
    print("Wrote flowers-grid.png and flowers-model/.")


if __name__ == "__main__":
    main()
