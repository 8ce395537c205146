"""hubtransfer's performance benchmarks: the seed pipeline, plain TensorFlow and hubtransfer,
side by side on the same images in the same run.

    python benchmarks/run.py --suite quick      # ~10 minutes on 2 quiet cores
    python benchmarks/run.py --suite full       # ~1.5 hours: the real sizes, 3 repeats
    python benchmarks/run.py --suite full --only memory accuracy --no-docs --json out.json

``--only`` picks groups of measurements: pipelines (the seed and its tf.data twin, 20
epochs each: the long ones), hubtransfer (fit, re-fit, predict), extraction, stages,
memory, accuracy.

Every measurement runs in its own fresh Python process, started from this one and in its
process group (Ctrl-C stops them all): no measurement inherits another's caches, traced
functions or memory, and each process's peak RSS is read with ``os.wait4`` (the same
``struct rusage`` that ``getrusage(RUSAGE_CHILDREN)`` sums up, for that one child). This
parent imports nothing heavy, because a child's peak RSS starts from the parent's.

Repeats alternate the pipelines (the order rotates every repeat), so drift in the machine's
load spreads over all of them. Every hubtransfer measurement gets an empty feature cache, so
extraction is always included; only the one-off conversions (the embedded SavedModel and its
TFLite copy, made once per machine and measured on their own) are shared.

The data is built once into the work folder (default ``<hubtransfer cache>/benchmarks``) and
reused: see ``benchmarks/datasets.py`` for what the images are.
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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import report

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent
REFIT_SETTINGS: Final = {"epochs": 30, "learning_rate": 3e-3, "l2": 1e-4, "dropout": 0.1}
"""Head settings of the warm re-fit: all different from the first fit's."""
RUNTIMES: Final = (None, "openvino", "tflite", "tensorflow")
"""Runtimes measured when ``extract_features`` has a ``runtime`` parameter (None: its default)."""


@dataclass(frozen=True, slots=True)
class Suite:
    """The sizes one suite measures."""

    name: str
    flowers_images: int
    memory_sizes: tuple[int, ...]
    fashion_per_class: tuple[int, int]
    repeats: int
    epochs: int = 20


SUITES: Final = {
    "quick": Suite(
        name="quick",
        flowers_images=500,
        memory_sizes=(300, 1000, 3000),
        fashion_per_class=(100, 40),
        repeats=1,
    ),
    # Checks the harness end to end in a couple of minutes; its figures mean nothing.
    "smoke": Suite(
        name="smoke",
        flowers_images=60,
        memory_sizes=(50, 100),
        fashion_per_class=(12, 5),
        repeats=1,
        epochs=2,
    ),
    "full": Suite(
        name="full",
        flowers_images=3670,
        memory_sizes=(1000, 10000, 30000),
        fashion_per_class=(500, 200),
        repeats=3,
    ),
}
GROUPS: Final = ("pipelines", "hubtransfer", "extraction", "stages", "memory", "accuracy")
GROUP_TASKS: Final = {
    "pipelines": ("seed_fit", "tfdata_fit"),
    "hubtransfer": ("hubtransfer_fit", "hubtransfer_predict"),
    "extraction": ("hubtransfer_extract", "tf_forward_limit", "tf_end_to_end"),
    "stages": ("stages",),
    "memory": ("memory_fit",),
    "accuracy": ("accuracy",),
}
"""The tasks each group runs (``--reuse`` copies a group's results by these names)."""


# Children --------------------------------------------------------------------------------


@dataclass
class Child:
    """One measurement process: what it ran, what it returned, and what it cost."""

    task: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    peak_rss_mb: float
    wall_s: float
    error: str | None = None


class Runner:
    """Starts each task in a fresh process and collects its result and peak RSS."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []

    def run(self, task: str, *, cache: str | None = None, **params: Any) -> Child:
        """Runs ``task``; ``cache``: "fresh" (an empty feature cache), a folder, or None."""
        stamp = f"{len(self.children):03d}-{task}"
        result_file = self.logs / f"{stamp}.json"
        command = [sys.executable, str(HERE / "run.py"), "--worker", task]
        command += ["--params", json.dumps(params), "--result", str(result_file)]
        if cache == "fresh":
            cache = str(self.work / "scratch" / stamp / "cache")
        if cache is not None:
            command += ["--cache", cache]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
        print(f"[{time.strftime('%H:%M:%S')}] {task} {_short(params)}", flush=True)
        start = time.perf_counter()
        with open(self.logs / f"{stamp}.log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        shutil.rmtree(self.work / "scratch" / stamp, ignore_errors=True)
        child = Child(task, params, None, usage.ru_maxrss / 1024, wall)
        if process.returncode == 0 and result_file.exists():
            child.result = json.loads(result_file.read_text())
        else:
            tail = (self.logs / f"{stamp}.log").read_text(errors="replace")[-2000:]
            child.error = f"exit status {process.returncode}: ...{tail}"
            print(f"    failed ({process.returncode}); see {self.logs / stamp}.log", flush=True)
        self.children.append(child)
        return child


def _short(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={Path(v).name if '/' in str(v) else v}" for k, v in params.items())


def worker(task: str, params: str, result: Path, cache: str | None) -> int:
    """Child side: sets up the cache, runs one task, writes its result as JSON."""
    sys.path.insert(0, str(HERE))
    import tasks

    if task != "prepare":
        # Imported before any timer starts, as a user's program would have them.
        import tensorflow  # noqa: F401
        import tensorflow_hub  # noqa: F401
        import tf_keras  # noqa: F401

        import hubtransfer  # noqa: F401
    if cache is not None:
        tasks.use_cache(Path(cache))
    output = tasks.TASKS[task](**json.loads(params))
    result.write_text(json.dumps(output))
    return 0


# The suite -------------------------------------------------------------------------------


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    totals = [int(line.split()[1]) for line in meminfo.splitlines() if "MemTotal" in line]
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "ram_gb": round(totals[0] / 1024**2, 1) if totals else None,
        "system": platform.platform(),
    }


def _git() -> dict[str, Any]:
    def output(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    return {"commit": output("rev-parse", "HEAD"), "dirty": bool(output("status", "--porcelain"))}


Job = Callable[[], object]


def _repeat_jobs(
    runner: Runner, suite: Suite, data: dict[str, Any], runtimes: Sequence[str | None], repeat: int
) -> list[tuple[str, Job]]:
    """The jobs of one repeat with their groups; ``run_suite`` rotates their order."""
    folder, epochs = data["flowers"], suite.epochs
    model_dir = str(runner.work / "scratch" / f"model-{repeat}")

    def hubtransfer_jobs() -> None:
        # The extraction pass that fit is compared with, run just before it: the two
        # then see the same machine load, which drifts over minutes on a shared host.
        runner.run("hubtransfer_extract", folder=folder, runtime=None, paired=True)
        fitted = runner.run(
            "hubtransfer_fit",
            cache="fresh",
            folder=folder,
            epochs=epochs,
            model_dir=model_dir,
            refit=REFIT_SETTINGS,
        )
        if fitted.result is not None:
            cache_parent = str(runner.work / "scratch" / f"predict-{repeat}")
            runner.run(
                "hubtransfer_predict",
                cache="fresh",
                folder=folder,
                model_dir=model_dir,
                cache_parent=cache_parent,
            )

    jobs: dict[str, list[Job]] = {
        "pipelines": [
            lambda: runner.run("seed_fit", folder=folder, epochs=epochs),
            lambda: runner.run("tfdata_fit", folder=folder, epochs=epochs),
        ],
        "hubtransfer": [hubtransfer_jobs],
        "extraction": [
            # The default runtime's pass right before TensorFlow's forward pass, in one job:
            # the report compares each such pair, which saw the same machine load.
            lambda: (
                runner.run("hubtransfer_extract", folder=folder, runtime=None),
                runner.run("tf_forward_limit", folder=folder),
            ),
            *(
                (lambda r=runtime: runner.run("hubtransfer_extract", folder=folder, runtime=r))
                for runtime in runtimes
                if runtime is not None
            ),
            lambda: runner.run("tf_end_to_end", folder=folder),
        ],
        "stages": [
            lambda: runner.run(
                "stages", folder=folder, epochs=epochs, scratch=str(runner.work / "scratch")
            )
        ],
    }
    return [(group, job) for group, group_jobs in jobs.items() for job in group_jobs]


def run_suite(
    suite: Suite, work: Path, groups: Sequence[str], baseline_repeats: int | None = None
) -> dict[str, Any]:
    """Runs the suite; returns the full record (machine, versions, every child's result).

    ``baseline_repeats``: run the seed and tf.data pipelines (the ``pipelines`` group, by
    far the slowest) in only the first that many repeats; default every repeat.
    """
    for leftover in ("scratch", "logs"):
        shutil.rmtree(work / leftover, ignore_errors=True)
    runner = Runner(work)
    record: dict[str, Any] = {
        "suite": asdict(suite),
        "groups": list(groups),
        "baseline_repeats": min(suite.repeats, baseline_repeats or suite.repeats),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
        "machine": _machine(),
        "git": _git(),
    }
    environment = runner.run("environment")
    record["environment"] = environment.result
    prepared = runner.run(
        "prepare",
        work=str(work),
        flowers_images=suite.flowers_images,
        memory_sizes=list(suite.memory_sizes),
        fashion_per_class=list(suite.fashion_per_class),
    )
    if prepared.result is None:
        raise SystemExit(f"Building the benchmark data failed: {prepared.error}")
    data = prepared.result
    record["data"] = data
    runner.run("baseline_memory")
    offered = (environment.result or {}).get("runtime_parameter", {})
    runtimes: list[str | None] = list(RUNTIMES) if offered.get("extract_features") else [None]
    for repeat in range(suite.repeats):
        jobs = [
            job
            for (group, job) in _repeat_jobs(runner, suite, data, runtimes, repeat)
            if group in groups
            and not (group == "pipelines" and repeat >= record["baseline_repeats"])
        ]
        shift = repeat % len(jobs) if jobs else 0
        for job in jobs[shift:] + jobs[:shift]:
            job()
    if "memory" in groups:
        for folder in data["memory"].values():
            runner.run("memory_fit", cache="fresh", folder=folder, epochs=suite.epochs)
    if "accuracy" in groups:
        runner.run(
            "accuracy",
            cache=str(work / "accuracy-cache"),
            train_folder=data["fashion_train"],
            test_folder=data["fashion_test"],
        )
    shutil.rmtree(work / "scratch", ignore_errors=True)
    record["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    record["load_average_after"] = os.getloadavg()
    record["children"] = [asdict(child) for child in runner.children]
    return record


def reuse_groups(record: dict[str, Any], earlier: dict[str, Any], name: str) -> None:
    """Adds to ``record`` the results of the groups only ``earlier`` measured.

    ``record["reused"]`` lists where each copied group was measured: in ``earlier``
    itself, or in the run ``earlier`` had copied it from.
    """
    groups = [g for g in earlier["groups"] if g not in record["groups"]]
    tasks = {task for group in groups for task in GROUP_TASKS[group]}
    copied = [
        child
        for child in earlier["children"]
        if child["task"] in tasks and not child["params"].get("paired")
    ]
    record["children"] += copied
    record["groups"] = [g for g in GROUPS if g in record["groups"] or g in groups]
    if "pipelines" in groups:
        record["baseline_repeats"] = earlier.get("baseline_repeats", earlier["suite"]["repeats"])
    previous = earlier.get("reused") or []
    previous = [previous] if isinstance(previous, dict) else previous
    inherited = {g for entry in previous for g in entry["groups"]}
    sources = [
        {**entry, "groups": [g for g in entry["groups"] if g in groups]}
        for entry in previous
        if any(g in groups for g in entry["groups"])
    ]
    own = [g for g in groups if g not in inherited]
    if own:
        sources.append(
            {
                "record": name,
                "groups": own,
                "git": earlier.get("git"),
                "started": earlier.get("started"),
                "finished": earlier.get("finished"),
            }
        )
    record["reused"] = sources


def _default_work() -> Path:
    # hubtransfer's own cache folder (HUBTRANSFER_CACHE_DIR, XDG_CACHE_HOME or ~/.cache).
    from hubtransfer import cache_dir

    return cache_dir() / "benchmarks"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument("--repeats", type=int, default=None, help="default: 1 quick, 3 full")
    parser.add_argument(
        "--baseline-repeats",
        type=int,
        default=None,
        help="repeats of the seed and tf.data pipelines (default: --repeats); each takes "
        "minutes, so fewer keep a full run within an hour",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="default: results/<suite>.json")
    parser.add_argument("--work", type=Path, default=None, help="data and logs folder")
    parser.add_argument(
        "--only", nargs="+", choices=GROUPS, default=list(GROUPS), help="measure only these"
    )
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="an earlier record of the same suite: the groups it measured that this run "
        "does not (--only) are copied from it, named as such on the page; for re-measuring "
        "a changed library without re-running the slow seed pipelines",
    )
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.params, args.result, args.cache)
    suite = SUITES[args.suite]
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error(f"--repeats must be a positive int. Got {args.repeats} instead.")
        suite = Suite(**{**asdict(suite), "repeats": args.repeats})
    work = (args.work or _default_work()).resolve()
    earlier = json.loads(args.reuse.read_text()) if args.reuse else None
    if earlier is not None and earlier["suite"]["name"] != suite.name:
        parser.error(f"--reuse needs a record of the {suite.name} suite.")
    record = run_suite(suite, work, args.only, args.baseline_repeats)
    if earlier is not None:
        reuse_groups(record, earlier, args.reuse.name)
    json_path = args.json or HERE / "results" / f"{suite.name}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    # Paths under the work folder are written relative to it: the record is committed.
    text = json.dumps(record, indent=1, sort_keys=True).replace(str(work), "<work>")
    json_path.write_text(text + "\n")
    print(f"Wrote {json_path}")
    if not args.no_docs:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.render(record, fragments=report.fragments()))
        print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
