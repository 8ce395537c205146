"""Few-shot identification: five images per class, and "unknown" for everything else.

The "people in my department" case: a handful of photos of each person, a classifier
that names them, and an honest "unknown" for a stranger. Here the people are six
Fashion-MNIST classes from the committed sample (examples/data/): five training
images each. Their held-out test images measure the accuracy; the test images of
the four other classes play the strangers, which a plain classifier must name as
one of the six.

A frozen ImageNet backbone makes this work with so few images: the head only has to
separate six clusters in a feature space that already tells shoes from bags.
Accuracy lands between 83% and 92% on the 60 held-out images (depending on which
five are picked: ``--seed``), against 17% by chance.

It then shows the trade-off of a confidence floor (``TransferClassifier.predict(...,
min_confidence=...)``; skipped on a hubtransfer without it): how many known images keep
their answer, how often that answer is right, and how many strangers become "unknown".
Strangers that look like a known class (a shirt among T-shirts) are answered
confidently too: a floor helps, it does not cure.

Run (offline, about 20 s on two CPU cores):
    python examples/few_shot.py [--shots 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import inspect
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import hubtransfer

DATA = Path(__file__).resolve().parent / "data"
KNOWN = ("ankle_boot", "bag", "dress", "sneaker", "t-shirt_top", "trouser")
STRANGERS = ("coat", "pullover", "sandal", "shirt")
FLOORS = (0.5, 0.7, 0.9)


def images_of(folder: Path, classes: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The image paths of some classes of a class-folder tree, with their class names."""
    collection = hubtransfer.scan_image_folder(folder)
    pairs = [
        (path, name)
        for path, name in zip(collection.paths, collection.label_names, strict=True)
        if name in classes
    ]
    return [path for path, _ in pairs], [name for _, name in pairs]


def few_shots(shots: int, seed: int) -> tuple[list[Path], list[str]]:
    """``shots`` training images per known class, picked at random (seeded)."""
    paths, names = images_of(DATA / "fashion-mnist-sample", KNOWN)
    rng = random.Random(seed)
    chosen: list[Path] = []
    labels: list[str] = []
    for name in KNOWN:
        pool = [path for path, label in zip(paths, names, strict=True) if label == name]
        picked = sorted(rng.sample(pool, shots))
        chosen += picked
        labels += [name] * len(picked)
    return chosen, labels


def has_unknown_api(model: hubtransfer.TransferClassifier) -> bool:
    """Whether this hubtransfer can answer "unknown" (its calibration API landed)."""
    return "min_confidence" in inspect.signature(model.predict).parameters


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=5, help="training images per class")
    parser.add_argument("--seed", type=int, default=0, help="which images are picked")
    args = parser.parse_args(argv)

    train, labels = few_shots(args.shots, args.seed)
    # No validation split: with five images a class, every one of them is needed to train.
    model = hubtransfer.TransferClassifier(
        epochs=100,
        learning_rate=0.01,
        validation_split=0.0,
        seed=args.seed,
        verbose=0,
    ).fit(train, labels)
    print(f"Trained on {len(train)} images: {args.shots} of each of {', '.join(KNOWN)}.")

    test, truth = images_of(DATA / "fashion-mnist-sample-test", KNOWN)
    predicted = model.predict(test)
    accuracy = float(np.mean(predicted == np.asarray(truth)))
    print(f"Accuracy on {len(test)} held-out images: {accuracy:.1%} (chance: {1 / len(KNOWN):.0%})")

    strangers, _ = images_of(DATA / "fashion-mnist-sample-test", STRANGERS)
    named = model.predict(strangers)
    counts = {name: int(np.sum(named == name)) for name in KNOWN}
    print(
        f"The {len(strangers)} strangers ({', '.join(STRANGERS)}) were all named anyway: "
        + ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    )

    if not has_unknown_api(model):
        print('(This hubtransfer has no calibration API, so the "unknown" part is skipped.)')
        return
    print("With a confidence floor, below which the answer is 'unknown':")
    print("  floor  known images kept  right among kept  strangers rejected")
    for floor in FLOORS:
        known_answers = model.predict(test, min_confidence=floor)
        stranger_answers = model.predict(strangers, min_confidence=floor)
        kept = known_answers != "unknown"
        right = float(np.mean(known_answers[kept] == np.asarray(truth)[kept])) if kept.any() else 0
        rejected = float(np.mean(stranger_answers == "unknown"))
        print(f"  {floor:5.2f}  {kept.mean():17.0%}  {right:15.0%}  {rejected:18.0%}")


if __name__ == "__main__":
    main()
