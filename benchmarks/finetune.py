"""What fine-tuning buys and costs: frozen backbone vs fine-tuning its top layers, on
Fashion-MNIST, on the same split, each run in its own fresh process.

    python benchmarks/finetune.py                          # ~15 minutes on 2 quiet cores
    python benchmarks/finetune.py --train 300 --test 200 --epochs 1   # a smoke run
    python benchmarks/finetune.py --layers 2 12 --no-augmentation

Every run trains ``TransferClassifier`` (the default embedded EfficientNet-Lite0, head
defaults, seed 0, 20% of the train folder held out for validation) on the same Fashion-MNIST
train folder and scores it on the same test folder:

- ``frozen``: the head alone on cached features (the library's default);
- ``fine_tune=N``: the same head, then the top ``N`` of the backbone's layers (as
  :func:`hubtransfer._finetune.trainable_groups` counts them: each convolution and each
  BatchNorm is one) trained with the head for ``--epochs`` epochs at the default
  fine-tuning learning rate, BatchNorm in inference mode;
- the same with the default :class:`hubtransfer.Augmentation`.

Each run gets an empty feature cache (only the one-off conversions of the embedded backbone
are shared), so every fit includes its feature extraction, and every fine-tuned model
extracts the validation and test features again with its new weights. Wall time and CPU
time (user + system, all threads) of the fit and of scoring the test folder are measured
inside the child; the child's whole wall and CPU time by the parent (``os.wait4``).

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package
(``apt-get install dataset-fashion-mnist``), written as PNG class folders by
``examples/make_fashion_mnist_sample.py`` into the work folder (default
``<hubtransfer cache>/benchmarks``); the images are not part of the repository.
Results go to ``benchmarks/results/finetune.json`` and a Markdown fragment
``benchmarks/results/finetune.md`` for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent
RESULTS: Final = HERE / "results"


# Child side ------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def child(config: dict[str, Any], train: str, test: str) -> dict[str, Any]:
    """One run: fit on ``train`` with ``config``, score on ``test``; seconds and accuracies."""
    import tensorflow  # noqa: F401
    import tf_keras  # noqa: F401

    import hubtransfer

    tuning = {}
    if config["layers"] is not None:
        tuning = {
            "fine_tune": config["layers"],
            "fine_tune_epochs": config["epochs"],
            "augmentation": config["augmentation"],
        }
    model = hubtransfer.TransferClassifier(seed=0, validation_split=0.2, verbose=1, **tuning)
    started, cpu = time.perf_counter(), _cpu_seconds()
    model.fit(train)
    fit_s, fit_cpu_s = time.perf_counter() - started, _cpu_seconds() - cpu
    started, cpu = time.perf_counter(), _cpu_seconds()
    test_accuracy = model.score(test)
    test_s, test_cpu_s = time.perf_counter() - started, _cpu_seconds() - cpu
    head_val = model.trainer_.history_.get("val_accuracy", [])
    tuned = model.fine_tune_result_
    assert model.validation_report_ is not None and model.split_ is not None
    return {
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "test_s": test_s,
        "test_cpu_s": test_cpu_s,
        "fine_tune_s": None if tuned is None else tuned.seconds,
        "trained_groups": None if tuned is None else list(tuned.trained_groups),
        "fine_tune_history": None if tuned is None else tuned.history,
        "head_epochs": len(model.trainer_.history_.get("loss", [])),
        "head_best_val_accuracy": max(head_val) if head_val else None,
        "validation_accuracy": model.validation_report_.accuracy,
        "test_accuracy": test_accuracy,
        "train_images": len(model.split_.train),
        "validation_images": len(model.split_.validation),
    }


# Parent side -----------------------------------------------------------------------------


def _label(config: dict[str, Any]) -> str:
    if config["layers"] is None:
        return "frozen (head only)"
    text = f"fine-tune top {config['layers']} layers, {config['epochs']} epoch"
    text += "s" if config["epochs"] != 1 else ""
    return text + (" + augmentation" if config["augmentation"] else "")


def _run_child(
    config: dict[str, Any], folders: tuple[Path, Path], work: Path, index: int
) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import tasks

    stamp = f"finetune-{index:02d}"
    cache = work / "scratch" / stamp / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    tasks.linked_cache(cache)
    result_file = work / "logs" / f"{stamp}.json"
    log_file = work / "logs" / f"{stamp}.log"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)]
    command += ["--folders", str(folders[0]), str(folders[1]), "--result", str(result_file)]
    env = {
        **os.environ,
        "HUBTRANSFER_CACHE_DIR": str(cache),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONHASHSEED": "0",
    }
    print(f"[{time.strftime('%H:%M:%S')}] {_label(config)}", flush=True)
    started = time.perf_counter()
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    shutil.rmtree(work / "scratch" / stamp, ignore_errors=True)
    code = os.waitstatus_to_exitcode(status)
    run: dict[str, Any] = {
        "label": _label(config),
        "config": config,
        "process_wall_s": wall,
        "process_cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "result": None,
        "error": None,
    }
    if code == 0 and result_file.exists():
        run["result"] = json.loads(result_file.read_text())
        result = run["result"]
        print(
            f"    test {result['test_accuracy']:.3f}, validation "
            f"{result['validation_accuracy']:.3f}, fit {result['fit_s']:.0f} s "
            f"({result['fit_cpu_s']:.0f} CPU s)",
            flush=True,
        )
    else:
        run["error"] = f"exit status {code}: ..." + log_file.read_text(errors="replace")[-2000:]
        print(f"    failed ({code}); see {log_file}", flush=True)
    return run


def _environment() -> dict[str, Any]:
    import platform

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def markdown(report: dict[str, Any]) -> str:
    """The fragment for docs/benchmarks.md: a paragraph and a table."""
    runs = [run for run in report["runs"] if run["result"] is not None]
    if not runs:
        return "No fine-tuning run finished; see benchmarks/results/finetune.json.\n"
    frozen = next((r for r in runs if r["config"]["layers"] is None), runs[0])
    base = frozen["result"]
    rows = [
        "| Run | Test accuracy | Validation accuracy | Fit wall (s) | Fit CPU (s) "
        "| Test scoring CPU (s) | Fit CPU vs frozen |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        result = run["result"]
        rows.append(
            f"| {run['label']} | {_percent(result['test_accuracy'])} "
            f"| {_percent(result['validation_accuracy'])} | {result['fit_s']:.0f} "
            f"| {result['fit_cpu_s']:.0f} | {result['test_cpu_s']:.0f} "
            f"| {result['fit_cpu_s'] / base['fit_cpu_s']:.1f}x |"
        )
    tuned = [r for r in runs if r["config"]["layers"] is not None]
    best = max(tuned, key=lambda r: r["result"]["test_accuracy"]) if tuned else None
    settings = report["settings"]
    intro = (
        f"**Fine-tuning** (`benchmarks/finetune.py`, {report['environment']['date'][:10]}): "
        f"Fashion-MNIST, {base['train_images']} training and {base['validation_images']} "
        f"validation images (a stratified 80/20 split of {settings['train']} training "
        f"images), scored on {settings['test']} test images; the default embedded "
        "EfficientNet-Lite0 and head settings, seed 0, the default fine-tuning learning rate "
        "(1e-5), BatchNorm in inference mode. Each run is a fresh process with an empty "
        "feature cache, so every fit includes feature extraction, and a fine-tuned model "
        "extracts its validation and test features again with its new weights. "
    )
    if best is not None:
        gain = best["result"]["test_accuracy"] - base["test_accuracy"]
        cost = best["result"]["fit_cpu_s"] / base["fit_cpu_s"]
        verdict = (
            f"The best fine-tuned run ({best['label']}) scores "
            f"{_percent(best['result']['test_accuracy'])} on the test images against "
            f"{_percent(base['test_accuracy'])} for the frozen backbone "
            f"({100 * gain:+.1f} points), for {cost:.1f}x the CPU time of the fit. "
        )
        tested = settings["test"]
        error = math.sqrt(base["test_accuracy"] * (1 - base["test_accuracy"]) / tested)
        verdict += (
            f"With {tested} test images the standard error of an accuracy is about "
            f"{100 * error:.1f} points, so differences under {200 * error:.0f} points are "
            "within noise. "
        )
        if gain <= 2 * error:
            verdict += (
                "At this size and epoch count fine-tuning does not clearly pay: the frozen "
                "ImageNet features are already most of what the head needs, and a few epochs "
                "at a small learning rate move the top layers little. It may pay with more "
                "epochs, more images, or images further from ImageNet than these. "
            )
    else:
        verdict = ""
    timing = (
        f"Timings are from a {report['environment']['cores']}-core machine shared with other "
        "work, so they are indicative; the CPU seconds are steadier than the wall seconds."
    )
    note = f" {report['note']}" if report.get("note") else ""
    heading = "## Fine-tuning on Fashion-MNIST\n\n"
    return heading + intro + verdict + timing + note + "\n\n" + "\n".join(rows) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2000, help="training images (10 classes)")
    parser.add_argument("--test", type=int, default=1000, help="test images")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs")
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 12])
    parser.add_argument("--no-augmentation", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite finetune.md from the finetune.json in --out, running nothing",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folders", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        output = child(json.loads(args.child), *args.folders)
        args.result.write_text(json.dumps(output))
        return 0

    if args.markdown_only:
        report = json.loads((args.out / "finetune.json").read_text())
        (args.out / "finetune.md").write_text(markdown(report))
        return 0
    if args.train < 100 or args.test < 10:
        parser.error("--train must be at least 100 and --test at least 10.")
    sys.path.insert(0, str(HERE))
    import datasets

    if args.work is None:
        sys.path.insert(0, str(REPO / "src"))
        import hubtransfer

        args.work = hubtransfer.cache_dir() / "benchmarks"
    folders = datasets.fashion_folders(
        args.work, train_per_class=args.train // 10, test_per_class=args.test // 10
    )
    configs: list[dict[str, Any]] = [{"layers": None, "epochs": 0, "augmentation": False}]
    configs += [{"layers": n, "epochs": args.epochs, "augmentation": False} for n in args.layers]
    if not args.no_augmentation:
        configs.append({"layers": max(args.layers), "epochs": args.epochs, "augmentation": True})
    started = time.perf_counter()
    runs = [_run_child(config, folders, args.work, i) for i, config in enumerate(configs)]
    report = {
        "settings": {
            "train": args.train // 10 * 10,
            "test": args.test // 10 * 10,
            "epochs": args.epochs,
            "layers": args.layers,
            "augmentation": not args.no_augmentation,
        },
        "environment": _environment(),
        "total_s": time.perf_counter() - started,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "finetune.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    (args.out / "finetune.md").write_text(markdown(report))
    print(
        f"Wrote {args.out / 'finetune.json'} and {args.out / 'finetune.md'} "
        f"in {report['total_s'] / 60:.1f} minutes."
    )
    return 0 if all(run["result"] is not None for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
