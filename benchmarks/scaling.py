"""Peak memory of feature extraction as the data set grows: 1k, 10k and 50k images.

For each size, a fresh Python process runs ``extract_features`` over that many
files of one synthetic folder into an empty sharded ``FeatureStore``, filling an
``np.memmap`` (``out=``) rather than an in-memory array: the path a million-image
folder takes. The parent reads the child's peak RSS with ``os.wait4``
(``ru_maxrss``), as ``benchmarks/run.py`` does, and imports nothing heavy itself,
because on Linux a child's peak RSS starts from its parent's at ``exec``.

The backbone is a small real TF-Hub-format SavedModel built by the script
(``hubtransfer.testing.make_tiny_savedmodel``: conv, batch norm, pooling, dense;
64x64 input, 256 features), not the embedded EfficientNet-Lite0: at ~100 images/s
on 2 cores, EfficientNet would take ~10 minutes for the 50k size alone, and the
backbone's size does not change with the data set, so it adds a constant to every
row. What grows with the data set is what is measured: the list of file digests,
the store's index, the shards written chunk by chunk, and the output map.

Usage::

    python benchmarks/scaling.py                      # 1k, 10k, 50k: ~6 minutes, ~2 once
                                                      # the images exist
    python benchmarks/scaling.py --sizes 1000 5000 --work /tmp/scaling

The images (a few hundred MB for 50k) stay in the work folder (default
``<hubtransfer cache>/benchmarks/scaling``) for the next run; the results go to
``benchmarks/results/scaling.json`` and the Markdown fragment ``scaling.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent
SIZES: Final = (1000, 10000, 50000)
IMAGES_PER_FOLDER: Final = 1000
IMAGE_SIDE: Final = 96
INPUT_SIZE: Final = (64, 64)
FEATURES: Final = 256


def _default_work() -> Path:
    # hubtransfer's own cache folder (HUBTRANSFER_CACHE_DIR, XDG_CACHE_HOME or ~/.cache).
    from hubtransfer import cache_dir

    return cache_dir() / "benchmarks" / "scaling"


# --- Children ---------------------------------------------------------------------------


def _child_images(work: Path, count: int) -> dict[str, Any]:
    """Writes ``count`` distinct JPEGs (a seeded gradient plus noise), 1,000 per folder."""
    import numpy as np
    from PIL import Image

    folder = work / "images"
    start = time.perf_counter()
    written = 0
    y, x = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE].astype(np.float32) / IMAGE_SIDE
    for index in range(count):
        path = folder / f"{index // IMAGES_PER_FOLDER:03d}" / f"{index:06d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(index)
        colours = rng.uniform(0, 255, (3, 3)).astype(np.float32)
        base = colours[0] + np.multiply.outer(x, colours[1] - colours[0])
        base += np.multiply.outer(y, colours[2] - colours[0]) * 0.5
        pixels = base + rng.normal(0, 12, base.shape)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        written += 1
    return {"written": written, "seconds": time.perf_counter() - start}


def _child_model(work: Path) -> dict[str, Any]:
    from hubtransfer.testing import make_tiny_savedmodel

    target = work / "model"
    if not (target / "saved_model.pb").exists():
        shutil.rmtree(target, ignore_errors=True)
        make_tiny_savedmodel(target, input_size=INPUT_SIZE, output_dim=FEATURES)
    return {"model": str(target)}


def _paths(work: Path, count: int) -> list[str]:
    folder = work / "images"
    paths = sorted(str(path) for path in folder.glob("*/*.jpg"))
    if len(paths) < count:
        raise SystemExit(f"Only {len(paths)} images in {folder}; {count} needed.")
    return paths[:count]


class _AnonymousPeak:
    """Samples ``RssAnon`` (heap and other memory no file backs) every 20 ms, keeping the peak.

    ``ru_maxrss`` also counts pages of memory-mapped files (the shards read back, the
    output map), which the kernel can drop at any time; this is the part it cannot.
    """

    def __init__(self) -> None:
        import threading

        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("RssAnon:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            self._stop.wait(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def _child_extract(work: Path, count: int, scratch: Path) -> dict[str, Any]:
    import numpy as np

    import hubtransfer
    from hubtransfer.testing import tiny_spec

    anonymous = _AnonymousPeak()
    spec = tiny_spec(work / "model", input_size=INPUT_SIZE, output_dim=FEATURES)
    paths = _paths(work, count)
    start = time.perf_counter()
    backbone = hubtransfer.load_backbone(spec)
    preprocessor = hubtransfer.Preprocessor.from_spec(spec)
    store = hubtransfer.FeatureStore(scratch / "store", feature_dim=FEATURES)
    loaded = time.perf_counter()
    out = np.lib.format.open_memmap(
        scratch / "features.npy", mode="w+", dtype=np.float32, shape=(count, FEATURES)
    )
    features = hubtransfer.extract_features(
        backbone, preprocessor, paths, store=store, out=out, verbose=False, runtime="tensorflow"
    )
    features.flush()
    finished = time.perf_counter()
    shards = list((scratch / "store").glob("shard-*"))
    return {
        "peak_anonymous_mib": anonymous.stop(),
        "images": count,
        "load_seconds": loaded - start,
        "extract_seconds": finished - loaded,
        "shards": len(shards),
        "store_bytes": sum(f.stat().st_size for s in shards for f in s.iterdir()),
        "checksum": float(np.asarray(features, np.float64).sum()),
    }


def _child_baseline(work: Path) -> dict[str, Any]:
    """Imports TensorFlow and hubtransfer and loads the backbone: the fixed part of the peak."""
    anonymous = _AnonymousPeak()
    import hubtransfer
    from hubtransfer.testing import tiny_spec

    backbone = hubtransfer.load_backbone(
        tiny_spec(work / "model", input_size=INPUT_SIZE, output_dim=FEATURES)
    )
    return {"output_dim": backbone.output_dim, "peak_anonymous_mib": anonymous.stop()}


def child(task: str, work: Path, count: int, result: Path, scratch: Path) -> int:
    if task == "images":
        record = _child_images(work, count)
    elif task == "model":
        record = _child_model(work)
    elif task == "baseline":
        record = _child_baseline(work)
    else:
        record = _child_extract(work, count, scratch)
    result.write_text(json.dumps(record))
    return 0


# --- Parent -----------------------------------------------------------------------------


def _run_child(task: str, work: Path, count: int = 0) -> dict[str, Any]:
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    result = scratch / "result.json"
    command = [sys.executable, __file__, "--child", task, "--work", str(work)]
    command += ["--count", str(count), "--result", str(result), "--scratch", str(scratch)]
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])
        ),
        "HUBTRANSFER_CACHE_DIR": str(work / "cache"),
    }
    print(f"[{time.strftime('%H:%M:%S')}] {task} {count or ''}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"The {task} child failed with exit status {code}.")
    record: dict[str, Any] = json.loads(result.read_text())
    record.update(peak_rss_mib=usage.ru_maxrss / 1024, wall_seconds=wall)
    shutil.rmtree(scratch, ignore_errors=True)
    return record


def _sizes_text(sizes: Sequence[int]) -> str:
    names = [f"{size // 1000}k" if size % 1000 == 0 else f"{size:,}" for size in sizes]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def render(record: dict[str, Any]) -> str:
    rows = record["runs"]
    peaks = [row["peak_rss_mib"] for row in rows]
    anonymous = [row["peak_anonymous_mib"] for row in rows]
    ratio = max(peaks) / min(peaks)
    anonymous_ratio = max(anonymous) / min(anonymous)
    span = max(1, rows[-1]["images"] - rows[0]["images"])
    growth = (peaks[-1] - peaks[0]) * 1024 / span
    anonymous_growth = (anonymous[-1] - anonymous[0]) * 1024 / span
    output_kib = FEATURES * 4 / 1024
    baseline = record["baseline"]
    lines = [
        "## Feature extraction at scale: memory",
        "",
        "`python benchmarks/scaling.py` runs `extract_features` over "
        f"{_sizes_text([row['images'] for row in rows])} JPEGs "
        f"({IMAGE_SIDE}x{IMAGE_SIDE} px, synthetic) into an empty sharded `FeatureStore`, "
        "filling an `np.memmap` through `out=`, each size in a fresh process. Peak RSS is "
        "read with `os.wait4` (`ru_maxrss`); it includes the pages of memory-mapped files "
        "(the output map, the shards being read back), which are page cache the kernel can "
        "drop at any time, so the child also samples its anonymous memory (`RssAnon`, heap "
        "and buffers: what cannot be dropped) every 20 ms. The backbone is a small real "
        "SavedModel the script builds (`hubtransfer.testing.make_tiny_savedmodel`, "
        f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]} input, {FEATURES} features), not the embedded "
        "EfficientNet-Lite0, which at ~100 images/s here would need ~10 minutes for 50k "
        "images alone: a backbone's memory is the same at every size, so it would only add "
        "a constant to every row.",
        "",
        "Features go to disk chunk by chunk (shards of 1,024 images), so anonymous memory "
        f"grows by {anonymous_ratio:.2f}x from the smallest to the largest size (about "
        f"{anonymous_growth:.1f} KiB per image: the list of file digests and the store's "
        f"index), and peak RSS by {ratio:.2f}x (about {growth:.1f} KiB per image: the same, "
        f"plus pages of mapped files, of which {output_kib:.1f} KiB are the image's row of "
        "the output map). A process that only "
        f"imports TensorFlow and loads the backbone peaks at {baseline['peak_rss_mib']:.0f} "
        f"MiB RSS, {baseline['peak_anonymous_mib']:.0f} MiB anonymous. The machine has 2 "
        "cores shared with other work, so the figures are indicative.",
        "",
        "| Images | Extraction (s) | Images/s | Peak RSS (MiB) | Peak anonymous (MiB) "
        "| Shards | Store on disk (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['images']:,} | {row['extract_seconds']:.1f} | "
            f"{row['images'] / row['extract_seconds']:.0f} | {row['peak_rss_mib']:.0f} | "
            f"{row['peak_anonymous_mib']:.0f} | {row['shards']} | "
            f"{row['store_bytes'] / 1e6:.1f} |"
        )
    lines += [
        "",
        f"Largest / smallest size: peak RSS **{ratio:.2f}x**, peak anonymous memory "
        f"**{anonymous_ratio:.2f}x**.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--work", type=Path, default=None, help="images and model folder")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "scaling.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results" / "scaling.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the Markdown from the JSON"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        args.markdown.write_text(render(json.loads(args.json.read_text())))
        return 0
    work = (args.work or _default_work()).resolve()
    if args.child:
        return child(args.child, work, args.count, args.result, args.scratch)
    sizes = sorted(args.sizes)
    record: dict[str, Any] = {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": os.getloadavg(),
        },
        "setup": {
            "image_side": IMAGE_SIDE,
            "input_size": list(INPUT_SIZE),
            "features": FEATURES,
            "backbone": "hubtransfer.testing.make_tiny_savedmodel",
            "runtime": "tensorflow",
        },
    }
    record["images"] = _run_child("images", work, max(sizes))
    _run_child("model", work)
    record["baseline"] = _run_child("baseline", work)
    record["runs"] = [_run_child("extract", work, size) for size in sizes]
    record["machine"]["load_average_after"] = os.getloadavg()
    record["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1).replace(str(work), "<work>") + "\n")
    args.markdown.write_text(render(record))
    print(render(record))
    print(f"Wrote {args.json} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
