"""ImageNet classification of a photo, offline, on the embedded EfficientNet-Lite0.

Shows `hubtransfer.classify`: one call from an image file to readable ImageNet
class names with probabilities. No network: the classifier ships inside a pip
dependency and is converted into TF-Hub format in the cache on first use.

Run:
    python examples/classify_photo.py                # the cat that ships with scikit-image
    python examples/classify_photo.py photo.jpg --top-k 3
"""

from __future__ import annotations

import argparse
from pathlib import Path


def default_photo() -> Path:
    """scikit-image's ``chelsea.png``, a photo of a tabby cat (installed with the test extra)."""
    try:
        import skimage
    except ImportError:
        raise SystemExit(
            "Pass an image path, or pip install scikit-image for the default."
        ) from None
    return Path(skimage.__file__).parent / "data" / "chelsea.png"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, help="image file (default: chelsea.png)")
    parser.add_argument("--top-k", type=int, default=5, help="classes to show")
    args = parser.parse_args(argv)

    import hubtransfer

    photo = args.image or default_photo()
    [result] = hubtransfer.classify(photo, top_k=args.top_k)
    print(f"{result.source}:")
    for prediction in result.predictions:
        bar = "#" * round(prediction.score * 40)
        print(f"  {prediction.score:7.2%}  {prediction.label:<24} {bar}")


if __name__ == "__main__":
    main()
