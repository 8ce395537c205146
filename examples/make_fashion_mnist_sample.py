"""Writes a small, reproducible sample of Fashion-MNIST as PNG files in class folders.

The README's examples train offline on this sample, so it is committed to the repository
(``examples/data/fashion-mnist-sample`` and ``examples/data/fashion-mnist-sample-test``).
This script is how it was made, and how to make it again::

    python examples/make_fashion_mnist_sample.py --split train --per-class 40 --seed 0
    python examples/make_fashion_mnist_sample.py --split test --per-class 10 --seed 0

It needs only numpy and Pillow, and reads the original ``*-idx?-ubyte.gz`` files, by default
from Debian's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``).

The output is deterministic: each class is sampled by its own generator,
``numpy.random.default_rng((seed, class_id))``, which draws a permutation of that class's
source indexes and keeps its first ``--per-class``; so a smaller ``--per-class`` gives a
subset of a larger one. PNGs are written by Pillow with ``optimize=True`` and no metadata,
so the same Pillow/zlib build writes byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

DEFAULT_SOURCE: Final = Path("/usr/share/datasets/fashion-mnist")
DATA_DIR: Final = Path("examples/data")
DEFAULT_OUT: Final = {
    "train": DATA_DIR / "fashion-mnist-sample",
    "test": DATA_DIR / "fashion-mnist-sample-test",
}
SOURCE_FILES: Final = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Folder names for labels 0..9, from Fashion-MNIST's label table
# ("T-shirt/top", "Trouser", ..., "Ankle boot"), made safe for file systems.
CLASS_NAMES: Final = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
ORIGINAL_NAMES: Final = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_IMAGES_MAGIC: Final = 0x00000803  # uint8 data, 3 dimensions
_LABELS_MAGIC: Final = 0x00000801  # uint8 data, 1 dimension

MIT_LICENCE: Final = """\
The MIT License (MIT) Copyright © [2017] Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def read_idx(path: Path, *, magic: int) -> npt.NDArray[np.uint8]:
    """Reads one gzipped IDX file (the MNIST format) into a uint8 array.

    Raises:
        ValueError: If the file is not an IDX file of the expected kind.
    """
    with gzip.open(path, "rb") as stream:
        raw = stream.read()
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path} is not the expected IDX file: magic number {found:#010x}, "
            f"expected {magic:#010x}. Pass --source the folder holding the original "
            "Fashion-MNIST *-ubyte.gz files."
        )
    n_dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * n_dims)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {shape}, found {data.size} bytes.")
    return data.reshape(shape)


def sample_indexes(labels: npt.NDArray[np.uint8], *, per_class: int, seed: int) -> list[int]:
    """Picks ``per_class`` source indexes of every class, sorted.

    Raises:
        ValueError: If a class has fewer than ``per_class`` images.
    """
    chosen: list[int] = []
    for class_id, name in enumerate(CLASS_NAMES):
        candidates = np.flatnonzero(labels == class_id)
        if candidates.size < per_class:
            raise ValueError(
                f"Class {name!r} has only {candidates.size} images; lower --per-class."
            )
        rng = np.random.default_rng((seed, class_id))
        chosen.extend(int(i) for i in rng.permutation(candidates)[:per_class])
    return sorted(chosen)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _command(split: str, per_class: int, seed: int, out: Path) -> str:
    parts = ["python examples/make_fashion_mnist_sample.py", f"--split {split}"]
    parts += [f"--per-class {per_class}", f"--seed {seed}"]
    if out != DEFAULT_OUT[split]:
        parts.append(f"--out {out.as_posix()}")
    return " ".join(parts)


def _readme(
    *, split: str, per_class: int, seed: int, out: Path, source_digests: dict[str, str]
) -> str:
    table = "\n".join(
        f"| {i} | {original} | `{folder}` |"
        for i, (original, folder) in enumerate(zip(ORIGINAL_NAMES, CLASS_NAMES, strict=True))
    )
    digests = "\n".join(f"- `{name}`: sha256 `{digest}`" for name, digest in source_digests.items())
    n_source = 60_000 if split == "train" else 10_000
    return f"""\
# Fashion-MNIST sample ({split} split, {per_class} images per class)

{per_class * len(CLASS_NAMES)} grayscale 28x28 PNG images, {per_class} for each of the 10
Fashion-MNIST classes, in one folder per class. Each file is named after its index in the
original {split} set of {n_source:,} images (`00123.png` is image 123).

## Source

Fashion-MNIST by Zalando Research: https://github.com/zalandoresearch/fashion-mnist
(Han Xiao, Kashif Rasul, Roland Vollgraf, *Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms*, arXiv:1708.07747, 2017), read from the original
IDX files (Debian package `dataset-fashion-mnist`, `/usr/share/datasets/fashion-mnist/`):

{digests}

## Classes

| label | Fashion-MNIST name | folder |
|---|---|---|
{table}

## How it was made

```
{_command(split, per_class, seed, out)}
```

The script samples each class with its own generator, `numpy.random.default_rng((seed,
label))`, and keeps the first {per_class} of a permutation of that class's images; it writes
the pixels unchanged as PNG (Pillow, `optimize=True`). Running it again gives the same files.

## Licence

Fashion-MNIST is released under the MIT licence:

{MIT_LICENCE}"""


def write_sample(
    *,
    source: Path,
    out: Path,
    split: str,
    per_class: int,
    seed: int,
    overwrite: bool = False,
) -> list[Path]:
    """Writes the sample and its README; returns the PNG paths written.

    Raises:
        FileExistsError: If ``out`` is not empty and ``overwrite`` is false.
        ValueError: If the source files are not Fashion-MNIST IDX files.
    """
    images_name, labels_name = SOURCE_FILES[split]
    images = read_idx(source / images_name, magic=_IMAGES_MAGIC)
    labels = read_idx(source / labels_name, magic=_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_name} holds {images.shape[0]} images but {labels_name} "
            f"holds {labels.shape[0]} labels."
        )
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} is not empty; pass --overwrite to replace the sample in it."
            )
        # Remove only what this script writes, never anything else in the folder.
        for name in CLASS_NAMES:
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "README.md").unlink(missing_ok=True)
    written: list[Path] = []
    for index in sample_indexes(labels, per_class=per_class, seed=seed):
        folder = out / CLASS_NAMES[int(labels[index])]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{index:05d}.png"
        Image.fromarray(images[index]).save(path, format="PNG", optimize=True)
        written.append(path)
    digests = {name: _sha256(source / name) for name in (images_name, labels_name)}
    readme = _readme(split=split, per_class=per_class, seed=seed, out=out, source_digests=digests)
    (out / "README.md").write_text(readme, encoding="utf-8", newline="\n")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder holding the Fashion-MNIST *-ubyte.gz files (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=(
            f"output folder (default: {DEFAULT_OUT['train']} for --split train, "
            f"{DEFAULT_OUT['test']} for --split test)"
        ),
    )
    parser.add_argument(
        "--per-class", type=int, default=40, help="images per class (default: %(default)s)"
    )
    parser.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="which Fashion-MNIST split to sample (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a sample already in --out"
    )
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per-class must be a positive int. Got {args.per_class} instead.")
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative int. Got {args.seed} instead.")
    out = args.out if args.out is not None else DEFAULT_OUT[args.split]
    try:
        written = write_sample(
            source=args.source,
            out=out,
            split=args.split,
            per_class=args.per_class,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    size = sum(path.stat().st_size for path in written)
    print(f"Wrote {len(written)} images ({size / 1024:.0f} KiB) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
