"""What checking the feature cache costs: a re-fit and a predict, with and without it.

Every shard of the feature cache carries the SHA-256 of its arrays, checked
when a process first reads the shard. This measures what that adds where it
weighs most: when every feature is already cached, so no backbone runs and a
re-fit or a predict is little more than reading the cache.

On one folder (the tf_flowers-like JPEGs of ``benchmarks/datasets.py``, 3,670
by default) with the default backbone, after one cold fit fills the cache,
each measurement runs in a fresh process (as each ``hubtransfer`` command
does, so nothing is remembered between them) and times:

- **re-fit**: ``TransferClassifier().fit(folder)`` on the cached features
  (hashing the files, reading the cache, 20 epochs of the head, calibration);
- **predict**: ``TransferClassifier.load(model).predict(folder)``.

Checked and unchecked runs alternate within each repeat (their order swapped
every other repeat), so the host's load drifts over both alike; the page
gives each repeat's ratio checked / unchecked, and their median. Then the
cache reads alone (a fresh store's ``missing`` and ``get`` of every image),
checked and unchecked in alternation in one process: the precise cost.

Usage::

    python benchmarks/verification.py                 # 3 repeats: ~10 minutes
    python benchmarks/verification.py --images 1000 --repeats 5

Results go to ``benchmarks/results/verification.json`` and the Markdown
fragment ``verification.md`` that ``benchmarks/report.py`` puts on the page.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent


def _cpu() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    models = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    matrix = [flag for flag in ("amx_bf16", "avx512_bf16", "avx512_vnni") if f" {flag}" in flags]
    name = models[0] if models else platform.processor()
    return f"{name} ({os.cpu_count()} cores; {', '.join(matrix) or 'no bf16/vnni/amx flags'})"


def _child(task: str, verify: bool, folder: Path, model_dir: Path) -> int:
    import hubtransfer
    from hubtransfer._features import FeatureStore

    if not verify:
        # The switch the benchmark needs and the library keeps off its public path.
        original = FeatureStore.for_backbone.__func__  # type: ignore[attr-defined]

        def unchecked(cls: type, *args: Any, **kwargs: Any) -> FeatureStore:
            return original(cls, *args, **{**kwargs, "verify": False})  # type: ignore[no-any-return]

        FeatureStore.for_backbone = classmethod(unchecked)  # type: ignore[method-assign,assignment]
    result: dict[str, Any] = {"task": task, "verify": verify}
    if task == "fill":
        start = time.perf_counter()
        hubtransfer.TransferClassifier(verbose=0).fit(folder).save(model_dir, force=True)
        result["seconds"] = time.perf_counter() - start
    elif task == "refit":
        start = time.perf_counter()
        model = hubtransfer.TransferClassifier(verbose=0).fit(folder)
        result["seconds"] = time.perf_counter() - start
        result["accuracy"] = model.validation_report_.accuracy if model.validation_report_ else None
    elif task == "predict":
        model = hubtransfer.TransferClassifier.load(model_dir)
        start = time.perf_counter()
        answers = model.predict(folder)
        result["seconds"] = time.perf_counter() - start
        result["images"] = len(answers)
    else:
        result.update(_store_reads(folder, model_dir))
    print(json.dumps(result))
    return 0


def _store_reads(folder: Path, model_dir: Path, rounds: int = 7) -> dict[str, Any]:
    """The cache reads alone: a fresh store's ``missing`` and ``get`` of every image, paired.

    The files' digests are computed once first; each round then times a new
    store (so the checksums are checked again) with and without checking,
    the order alternating; the files are in the page cache for both.
    """
    import hubtransfer
    from hubtransfer._features import FeatureStore, cached_digest

    model = hubtransfer.TransferClassifier.load(model_dir)
    paths = hubtransfer.scan_image_folder(folder).paths
    digests = [cached_digest(path) for path in paths]
    assert model._store is not None
    directory, width = model._store.directory, model._store.feature_dim
    seconds: dict[str, list[float]] = {"checked": [], "unchecked": []}
    for round_ in range(rounds):
        order = (True, False) if round_ % 2 == 0 else (False, True)
        for verify in order:
            start = time.perf_counter()
            store = FeatureStore(directory, feature_dim=width, verify=verify)
            assert store.missing(digests) == []
            store.get(digests)
            seconds["checked" if verify else "unchecked"].append(time.perf_counter() - start)
    return {"store_seconds": seconds, "digests": len(digests)}


def _run(task: str, verify: bool, folder: Path, model_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", task, "--verify", str(int(verify)),
         "--folder", str(folder), "--model", str(model_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{task} (verify={verify}) failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _shards(model_dir: Path) -> dict[str, Any]:
    """The shards of the store the saved model reads (not the other stores in the cache)."""
    import hubtransfer

    store = hubtransfer.TransferClassifier.load(model_dir)._store
    assert store is not None
    shards = list(store.directory.glob("shard-*"))
    size = sum(p.stat().st_size for shard in shards for p in shard.iterdir())
    return {"shards": len(shards), "bytes": size}


def render(record: dict[str, Any]) -> str:
    lines = [
        "## Checking the feature cache",
        "",
        "Every shard of the feature cache carries the SHA-256 of its arrays, checked the first "
        "time a process reads it. Cost where it weighs most, with every feature already cached "
        f"(no backbone work): {record['images']:,} JPEGs, the default backbone, "
        f"{record['store']['shards']} shards of {record['store']['bytes'] / 1e6:.1f} MB; each "
        "run a fresh process; checked and unchecked runs side by side in each repeat.",
        "",
        f"Machine: {record['machine']['cpu']}; load average {record['machine']['load_before']}"
        f" before, {record['machine']['load_after']} after. Run {record['started']}.",
        "",
        "| repeat | re-fit checked | re-fit unchecked | ratio | predict checked | "
        "predict unchecked | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios: dict[str, list[float]] = {"refit": [], "predict": []}
    for index, pair in enumerate(record["repeats"], start=1):
        cells = []
        for task in ("refit", "predict"):
            checked, unchecked = pair[task]["checked"], pair[task]["unchecked"]
            ratio = checked / unchecked
            ratios[task].append(ratio)
            cells += [f"{checked:.2f} s", f"{unchecked:.2f} s", f"{ratio:.3f}x"]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    refit, predict = (statistics.median(ratios[task]) for task in ("refit", "predict"))
    reads = record["store"]["reads"]["store_seconds"]
    checked, unchecked = (statistics.median(reads[k]) for k in ("checked", "unchecked"))
    refit_unchecked = statistics.median(pair["refit"]["unchecked"] for pair in record["repeats"])
    predict_unchecked = statistics.median(
        pair["predict"]["unchecked"] for pair in record["repeats"]
    )
    extra = checked - unchecked
    lines += [
        "",
        f"Median ratio checked / unchecked: re-fit {refit:.3f}x, predict {predict:.3f}x. "
        "On a shared machine these end-to-end pairs swing by far more than the check costs (a "
        "fresh process's re-fit varies by seconds from one run to the next), so they bound the "
        "cost rather than measure it.",
        "",
        "The reads alone, in one process, a fresh store each time, checked and unchecked "
        f"alternating ({len(reads['checked'])} pairs): reading every cached feature takes "
        f"**{checked * 1e3:.0f} ms** checked against **{unchecked * 1e3:.0f} ms** unchecked "
        f"({checked / unchecked:.2f}x): the check adds **{extra * 1e3:.0f} ms**, "
        f"**{extra / refit_unchecked:.1%}** of the median unchecked re-fit and "
        f"**{extra / predict_unchecked:.1%}** of the median unchecked predict: the figure "
        "to go by.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3670)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "verification.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "results" / "verification.md")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--verify", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, bool(args.verify), args.folder, args.model)
    if args.render_only:
        args.markdown.write_text(render(json.loads(args.json.read_text())))
        return 0
    sys.path.insert(0, str(HERE))
    from datasets import ImagePool, flowers_counts

    import hubtransfer

    work = (args.work or hubtransfer.cache_dir() / "benchmarks" / "verification").resolve()
    counts = flowers_counts(args.images)
    pool = ImagePool(work / "pool", per_class=max(counts))
    pool.build()
    folder = pool.link_folder(work / f"flowers-{args.images}", counts)
    model_dir = work / "model"
    record: dict[str, Any] = {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu(), "load_before": [round(x, 1) for x in os.getloadavg()]},
        "images": args.images,
        "fill": _run("fill", True, folder, model_dir),
        "repeats": [],
    }
    record["store"] = _shards(model_dir)
    record["store"]["reads"] = _run("store", True, folder, model_dir)
    for repeat in range(args.repeats):
        order = (True, False) if repeat % 2 == 0 else (False, True)
        pair: dict[str, dict[str, float]] = {"refit": {}, "predict": {}}
        for task in ("refit", "predict"):
            for verify in order:
                seconds = _run(task, verify, folder, model_dir)["seconds"]
                pair[task]["checked" if verify else "unchecked"] = seconds
        record["repeats"].append(pair)
        print(json.dumps(pair), flush=True)
    record["machine"]["load_after"] = [round(x, 1) for x in os.getloadavg()]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1).replace(str(work), "<work>") + "\n")
    args.markdown.write_text(render(record))
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
