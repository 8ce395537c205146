"""The benchmark data: a tf_flowers-like folder of JPEGs, and Fashion-MNIST PNG folders.

tf_flowers (3,670 JPEGs of 240-500 px, about 40 KB each, in 5 class folders) is what the
performance targets were set on, but it needs the internet. These images stand in for it,
built offline from real pictures only:

- the background of each image is a random crop of a real photograph that ships with
  scikit-image (astronaut, chelsea the cat, coffee, rocket, motorcycles, the Hubble deep
  field, a retina, a microscopy slide; and the greyscale camera man, moon, coins, brick,
  grass and gravel, tinted) or scikit-learn (china.jpg, flower.jpg), rescaled, flipped and
  colour-jittered;
- on it sits one Fashion-MNIST item of the image's class (trouser, dress, sandal, bag or
  ankle boot; 28x28 greyscale from the Debian ``dataset-fashion-mnist`` files), upscaled to
  35-80% of the image, coloured, and alpha-blended at a random place;
- the background gets mild Gaussian noise (sigma 4.5 grey levels), as from a camera sensor;
- the image is saved as a baseline JPEG of quality 86-95, sized 240-500 px a side.

So decoding and resizing cost what real photos cost (photographic texture, the same sizes
and file sizes), and the class is visible, though the task is not flowers. Class sizes copy
tf_flowers' (633, 898, 641, 699, 799). Every image is drawn from its own seeded generator, so
the files are the same on every run; all images are distinct files, so the feature cache
never deduplicates them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

REPO: Final = Path(__file__).resolve().parent.parent
FASHION_SOURCE: Final = Path("/usr/share/datasets/fashion-mnist")

FLOWERS_COUNTS: Final = (633, 898, 641, 699, 799)
"""tf_flowers' class sizes (daisy, dandelion, roses, sunflowers, tulips): 3,670 images."""

ITEM_CLASSES: Final = {"trouser": 1, "dress": 3, "sandal": 5, "bag": 8, "ankle_boot": 9}
"""Folder name -> Fashion-MNIST label of the item drawn on each image."""

_COLOUR_PHOTOS: Final = (
    ("skimage", "astronaut.png"),
    ("skimage", "chelsea.png"),
    ("skimage", "coffee.png"),
    ("skimage", "rocket.jpg"),
    ("skimage", "motorcycle_left.png"),
    ("skimage", "motorcycle_right.png"),
    ("skimage", "hubble_deep_field.jpg"),
    ("skimage", "retina.jpg"),
    ("skimage", "ihc.png"),
    ("sklearn", "china.jpg"),
    ("sklearn", "flower.jpg"),
)
_GREY_PHOTOS: Final = (
    ("skimage", "camera.png"),
    ("skimage", "moon.png"),
    ("skimage", "coins.png"),
    ("skimage", "brick.png"),
    ("skimage", "grass.png"),
    ("skimage", "gravel.png"),
)
_SIDE: Final = (240, 500)
_QUALITY: Final = (86, 95)
_SEED: Final = 20240611


def _fashion_module() -> object:
    """The repository's Fashion-MNIST sample writer (examples/), imported by path."""
    path = REPO / "examples" / "make_fashion_mnist_sample.py"
    spec = importlib.util.spec_from_file_location("make_fashion_mnist_sample", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot import {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _package_data(package: str, name: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ImportError(f"{package} is needed for the benchmark images (pip install {package}).")
    base = Path(next(iter(found.submodule_search_locations)))
    return base / ("data" if package == "skimage" else "datasets/images") / name


@cache
def _photos() -> tuple[npt.NDArray[np.uint8], ...]:
    photos = []
    for package, name in _COLOUR_PHOTOS:
        photos.append(np.asarray(Image.open(_package_data(package, name)).convert("RGB")))
    for package, name in _GREY_PHOTOS:
        grey = np.asarray(Image.open(_package_data(package, name)).convert("L"), np.float32)
        photos.append(np.repeat(grey[..., None], 3, axis=-1).astype(np.uint8))
    return tuple(photos)


@cache
def _items() -> dict[int, npt.NDArray[np.uint8]]:
    """Fashion-MNIST training items of the five classes, by label."""
    module = _fashion_module()
    read_idx = module.read_idx  # type: ignore[attr-defined]
    images = read_idx(FASHION_SOURCE / "train-images-idx3-ubyte.gz", magic=0x803)
    labels = read_idx(FASHION_SOURCE / "train-labels-idx1-ubyte.gz", magic=0x801)
    return {label: images[labels == label] for label in ITEM_CLASSES.values()}


@cache
def _noise_tile() -> npt.NDArray[np.int16]:
    """Gaussian noise (sigma 4.5 grey levels) that images take random windows of."""
    rng = np.random.default_rng(_SEED)
    noise = rng.normal(0.0, 4.5, size=(_SIDE[1] + 100, _SIDE[1] + 100, 3))
    return np.rint(noise).astype(np.int16)


def _background(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.int16]:
    photos = _photos()
    photo = photos[int(rng.integers(len(photos)))]
    rows, cols = photo.shape[:2]
    scale = rng.uniform(0.6, 1.0)
    crop_h = max(16, int(min(rows, cols * height / width) * scale))
    crop_w = min(cols, max(16, int(crop_h * width / height)))
    top = int(rng.integers(rows - crop_h + 1))
    left = int(rng.integers(cols - crop_w + 1))
    image = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    # Colour jitter: a random per-channel gain and offset (tints the greyscale photos too).
    gain = rng.uniform(0.6, 1.3, size=3)
    offset = rng.uniform(-30, 30, size=3)
    levels = np.arange(256)
    table = np.concatenate(
        [np.clip(levels * g + o, 0, 255) for g, o in zip(gain, offset, strict=True)]
    )
    pixels = np.asarray(image.point(np.rint(table).astype(int).tolist()), np.int16)
    # Sensor-like noise, as real photos have: it gives JPEG the entropy of a photo.
    noise = _noise_tile()
    top, left = (int(v) for v in rng.integers(0, 100, size=2))
    return pixels + noise[top : top + height, left : left + width]


def _composite(
    rng: np.random.Generator, canvas: npt.NDArray[np.int16], item: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    height, width = canvas.shape[:2]
    side = int(min(height, width) * rng.uniform(0.35, 0.8))
    grown = Image.fromarray(item).resize((side, side), Image.Resampling.BICUBIC)
    shade = np.asarray(grown, np.float32)[..., None] / 255.0
    alpha = np.clip(shade * 1.6, 0.0, 1.0)
    colour = rng.uniform(40, 255, size=3).astype(np.float32)
    top = int(rng.integers(height - side + 1))
    left = int(rng.integers(width - side + 1))
    region = canvas[top : top + side, left : left + side]
    region[:] = region * (1 - alpha) + colour * (0.35 + 0.65 * shade) * alpha
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _write_image(task: tuple[Path, str, int]) -> None:
    path, class_name, index = task
    label = ITEM_CLASSES[class_name]
    rng = np.random.default_rng((_SEED, label, index))
    width, height = (int(v) for v in rng.integers(_SIDE[0], _SIDE[1] + 1, size=2))
    items = _items()[label]
    item = items[int(rng.integers(len(items)))]
    pixels = _composite(rng, _background(rng, width, height), item)
    quality = int(rng.integers(_QUALITY[0], _QUALITY[1] + 1))
    temporary = path.with_name(f".{path.name}.tmp")
    Image.fromarray(pixels).save(temporary, format="JPEG", quality=quality)
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class ImagePool:
    """Generated JPEGs, ``per_class`` in each class folder; folders link subsets of it."""

    root: Path
    per_class: int

    def path(self, class_name: str, index: int) -> Path:
        return self.root / class_name / f"{index:05d}.jpg"

    def build(self, *, workers: int | None = None) -> None:
        """Writes the images that are not there yet (in parallel processes)."""
        tasks = []
        for class_name in ITEM_CLASSES:
            (self.root / class_name).mkdir(parents=True, exist_ok=True)
            for index in range(self.per_class):
                path = self.path(class_name, index)
                if not path.exists():
                    tasks.append((path, class_name, index))
        if not tasks:
            return
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
            list(pool.map(_write_image, tasks, chunksize=64))

    def link_folder(self, target: Path, counts: Sequence[int]) -> Path:
        """A class folder of the first ``counts[c]`` images of each class, as hard links."""
        for class_name, count in zip(ITEM_CLASSES, counts, strict=True):
            if count > self.per_class:
                raise ValueError(f"The pool has {self.per_class} images per class, not {count}.")
            folder = target / class_name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                link = folder / f"{index:05d}.jpg"
                if not link.exists():
                    os.link(self.path(class_name, index), link)
        return target


def flowers_counts(total: int) -> tuple[int, ...]:
    """Class sizes in tf_flowers' proportions, adding up to ``total``."""
    shares = np.asarray(FLOWERS_COUNTS, np.float64) / sum(FLOWERS_COUNTS)
    counts = np.floor(shares * total).astype(int)
    counts[np.argsort(-(shares * total - counts))[: total - counts.sum()]] += 1
    return tuple(int(c) for c in counts)


def equal_counts(total: int) -> tuple[int, ...]:
    """``total`` images spread evenly over the five classes."""
    base, extra = divmod(total, len(ITEM_CLASSES))
    return tuple(base + (1 if c < extra else 0) for c in range(len(ITEM_CLASSES)))


def fashion_folders(work: Path, *, train_per_class: int, test_per_class: int) -> tuple[Path, Path]:
    """Fashion-MNIST train and test samples as PNG class folders (10 classes)."""
    module = _fashion_module()
    write_sample = module.write_sample  # type: ignore[attr-defined]
    folders = []
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        out = work / f"fashion-mnist-{split}-{per_class}"
        if not (out / "README.md").exists():
            write_sample(source=FASHION_SOURCE, out=out, split=split, per_class=per_class, seed=0)
        folders.append(out)
    return folders[0], folders[1]


def folder_stats(folder: Path) -> dict[str, float]:
    """Count, mean file size and mean width/height of the images in a folder."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".jpg", ".png"})
    sizes = [p.stat().st_size for p in files]
    shapes = [Image.open(p).size for p in files[:: max(1, len(files) // 200)]]
    return {
        "images": len(files),
        "mean_kb": float(np.mean(sizes)) / 1024 if sizes else 0.0,
        "mean_width": float(np.mean([s[0] for s in shapes])) if shapes else 0.0,
        "mean_height": float(np.mean([s[1] for s in shapes])) if shapes else 0.0,
    }
