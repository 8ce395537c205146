"""Feature-extraction throughput: TensorFlow's forward pass against hubtransfer's runtimes.

Measures, on the embedded EfficientNet-Lite0 feature vector and a folder of JPEGs:

* ``tf-forward``: TensorFlow's forward pass alone, on images decoded beforehand
  (batches of 64 in memory): TensorFlow's own limit;
* ``tflite-forward``: the TFLite runtime alone on the same decoded images;
* ``tf-end-to-end``: JPEG files → ``Preprocessor.dataset`` → TensorFlow forward;
* ``hubtransfer-auto``: ``extract_features(..., runtime="auto")`` from the files.

Cases run in interleaved rounds (so a burst of load elsewhere hits all of them)
and the median of the rounds is reported, with the process's CPU time per image,
which other processes on the machine disturb much less than wall time.

It uses the normal cache (``$HUBTRANSFER_CACHE_DIR``): the first run converts the
backbone to TFLite and checks it (~10 s, reported, not timed).

Usage::

    python benchmarks/extraction.py                  # 500 JPEGs made from sample photos
    python benchmarks/extraction.py --images DIR     # your own images
    python benchmarks/extraction.py --rounds 5 --count 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def make_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Writes ``count`` JPEGs (240-500 px) cropped from photos that ship in pip packages."""
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    names = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry", "retina")
    photos = [getattr(skimage.data, name)()[..., :3] for name in names]
    photos += list(load_sample_images().images)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        crop_h, crop_w = int(height * rng.uniform(0.5, 1)), int(width * rng.uniform(0.5, 1))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        image = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
        scale = int(rng.integers(240, 501)) / max(crop_h, crop_w)
        image = image.resize((max(1, round(crop_w * scale)), max(1, round(crop_h * scale))))
        path = folder / f"{index:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def _timed(function: Callable[[], object], count: int) -> tuple[float, float]:
    """(images per second, CPU milliseconds per image) for one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, 1000 * cpu / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of images (default: make JPEGs)")
    parser.add_argument("--count", type=int, default=500, help="images to make or use")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    import hubtransfer
    from hubtransfer._runtime import select_runtime

    with tempfile.TemporaryDirectory() as scratch:
        if args.images:
            paths = sorted(
                p
                for p in args.images.rglob("*")
                if p.suffix.lower() in hubtransfer.IMAGE_EXTENSIONS
            )[: args.count]
        else:
            paths = make_jpegs(Path(scratch) / "jpegs", args.count)
        count = len(paths)
        backbone = hubtransfer.load_backbone("efficientnet_lite0_embedded_fv")
        preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
        started = time.perf_counter()
        auto = select_runtime(backbone, runtime="auto")
        print(f"runtime 'auto' chose {auto!r} in {time.perf_counter() - started:.1f} s")
        batch = args.batch_size
        decoded = [tf.constant(b.numpy()) for b in preprocessor.dataset(paths, batch_size=batch)]
        decoded_numpy = [b.numpy() for b in decoded]
        forward = tf.function(lambda images: backbone.layer(images, training=False))

        def tf_forward() -> None:
            for images in decoded:
                forward(images).numpy()

        def tflite_forward() -> None:
            for images in decoded_numpy:
                auto(images)

        def tf_end_to_end() -> None:
            for images in preprocessor.dataset(paths, batch_size=batch):
                forward(images).numpy()

        def hubtransfer_auto() -> None:
            hubtransfer.extract_features(
                backbone, preprocessor, paths, batch_size=batch, verbose=False, runtime="auto"
            )

        cases = {
            "tf-forward": tf_forward,
            "tflite-forward": tflite_forward,
            "tf-end-to-end": tf_end_to_end,
            "hubtransfer-auto": hubtransfer_auto,
        }
        for function in cases.values():  # warm-up: traces, delegate set-up, file cache
            function()
        load_before = os.getloadavg()[0]
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, function in cases.items():
                results[name].append(_timed(function, count))
        load_after = os.getloadavg()[0]

    print(
        f"{count} images, batch {batch}, {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} -> {load_after:.1f}"
    )
    print(f"{'case':<18} {'img/s median':>13} {'best':>6} {'rounds':>22} {'CPU ms/img':>11}")
    rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, runs in results.items():
        rate[name] = statistics.median(r for r, _ in runs)
        cpu[name] = statistics.median(ms for _, ms in runs)
        best = max(r for r, _ in runs)
        shown = " ".join(f"{r:.0f}" for r, _ in runs)
        print(f"{name:<18} {rate[name]:>13.1f} {best:>6.1f} {shown:>22} {cpu[name]:>11.1f}")
    # CPU time per image is what a quiet machine turns into throughput; on a busy one
    # it is the steadier of the two figures.
    print("speed relative to tf-forward: wall-clock / by CPU time per image")
    for name in ("tflite-forward", "tf-end-to-end", "hubtransfer-auto"):
        ratio_wall = rate[name] / rate["tf-forward"]
        ratio_cpu = cpu["tf-forward"] / cpu[name]
        print(f"  {name:<18} {ratio_wall:.2f}x / {ratio_cpu:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
