"""Feature extraction under a tf.distribute.Strategy, shared among workers.

The in-process tests use the default strategy. The slow ones run fresh
processes, as tests/test_distribute.py does (logical devices and multi-worker
collectives must be set up before TensorFlow first touches a device): two
logical CPUs under MirroredStrategy, two loopback workers under
MultiWorkerMirroredStrategy, and a worker killed with SIGKILL mid-extraction.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hubtransfer
from hubtransfer import FeatureStore, extract_features
from hubtransfer._sharding import worker_position, worker_share
from hubtransfer.testing import free_loopback_ports, tiny_spec

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def _write_images(folder: Path, count: int, *, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        pixels = np.random.default_rng(index).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        path = folder / f"{index:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two class folders of 20 distinct images, and one copy (a duplicate digest)."""
    root = tmp_path_factory.mktemp("images")
    paths = _write_images(root / "cat", 20)
    dog = _write_images(root / "dog", 20, start=20)
    copy = root / "dog" / "copy-of-cat-000.png"
    copy.write_bytes(paths[0].read_bytes())
    return sorted([*paths, *dog, copy], key=str)


@pytest.fixture(scope="module")
def backbone(tiny_models: dict[str, Path]) -> hubtransfer.Backbone:
    return hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))


@pytest.fixture(scope="module")
def reference(backbone: hubtransfer.Backbone, images: list[Path]) -> np.ndarray:
    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    return extract_features(backbone, preprocessor, images, verbose=False, runtime="tensorflow")


# --- In this process ----------------------------------------------------------------------


def test_worker_share_is_deterministic_disjoint_and_complete() -> None:
    digests = [f"{i:064x}" for i in (5, 3, 9, 1, 3, 7, 0)]
    shares = [worker_share(digests, index, 3) for index in range(3)]
    assert shares == [worker_share(list(reversed(digests)), index, 3) for index in range(3)]
    flat = [d for share in shares for d in share]
    assert sorted(flat) == sorted(set(digests))
    assert len(flat) == len(set(flat))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_single_client_strategies_are_one_worker() -> None:
    import tensorflow as tf

    assert worker_position(None) == (0, 1)
    assert worker_position(tf.distribute.get_strategy()) == (0, 1)
    assert worker_position(tf.distribute.OneDeviceStrategy("/cpu:0")) == (0, 1)


def test_default_strategy_and_out_array_match_plain_extraction(
    backbone: hubtransfer.Backbone, images: list[Path], reference: np.ndarray, tmp_path: Path
) -> None:
    import tensorflow as tf

    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    store = FeatureStore(tmp_path / "store", feature_dim=backbone.output_dim)
    out = np.lib.format.open_memmap(
        tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=reference.shape
    )
    result = extract_features(
        backbone,
        preprocessor,
        images,
        store=store,
        strategy=tf.distribute.get_strategy(),
        chunk_size=16,
        out=out,
        verbose=False,
        runtime="tensorflow",
    )
    assert result is out
    np.testing.assert_allclose(result, reference, **TOLERANCE)
    # 41 files, 40 distinct contents: shards of 16, 16 and 8, with no worker tag for one worker.
    shards = sorted((tmp_path / "store").glob("shard-*"))
    rows = [len(np.load(shard / "digests.npy")) for shard in shards]
    assert rows == [16, 16, 8]
    assert not any("-w" in shard.name for shard in shards)


def test_out_array_without_a_store(
    backbone: hubtransfer.Backbone, images: list[Path], reference: np.ndarray
) -> None:
    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    out = np.zeros(reference.shape, np.float32)
    extract_features(backbone, preprocessor, images, out=out, chunk_size=7, verbose=False)
    np.testing.assert_allclose(out, reference, **TOLERANCE)


def test_bad_out_and_strategy_are_named(backbone: hubtransfer.Backbone, images: list[Path]) -> None:
    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    with pytest.raises(hubtransfer.InvalidParameterError, match="'out' parameter"):
        extract_features(backbone, preprocessor, images, out=np.zeros((3, 8), np.float32))
    with pytest.raises(hubtransfer.InvalidParameterError, match="'strategy' parameter"):
        extract_features(backbone, preprocessor, images, strategy="mirrored")


@pytest.mark.parametrize("route", ["strategy", "out"])
def test_a_file_the_decoder_refuses_is_named_on_the_sharded_path(
    backbone: hubtransfer.Backbone, images: list[Path], tmp_path: Path, route: str
) -> None:
    import io

    import tensorflow as tf

    # A JPEG cut off a third of the way from its end: its header is fine, its data is not.
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")
    bad = tmp_path / "cut-off.jpg"
    bad.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    files = [*images[:5], bad]
    preprocessor = hubtransfer.Preprocessor.from_spec(backbone.spec)
    options: dict[str, object] = (
        {"strategy": tf.distribute.get_strategy()}
        if route == "strategy"
        else {"out": np.zeros((len(files), backbone.output_dim), np.float32)}
    )
    with pytest.raises(hubtransfer.ImageDecodeError) as info:
        extract_features(
            backbone,
            preprocessor,
            files,
            store=FeatureStore.for_backbone(
                backbone, backbone.spec.preprocessing, root=tmp_path / "store"
            ),
            verbose=False,
            **options,  # type: ignore[arg-type]
        )
    assert str(info.value).startswith("1 of 6 image files cannot be decoded:\n")
    assert repr(str(bad)) in str(info.value)


def test_a_worker_tag_names_the_shard(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, feature_dim=2)
    store.put(["a" * 64], np.ones((1, 2)), worker=3)
    (shard,) = tmp_path.glob("shard-*")
    assert "-w3-" in shard.name
    assert "a" * 64 in store


# --- Fresh processes ----------------------------------------------------------------------

WORKER = """
    import json, os, sys, time
    from pathlib import Path
    import numpy as np
    import tensorflow as tf

    mode, model, images, store, out = sys.argv[1:6]
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import hubtransfer
    from hubtransfer._runtime import TensorFlowRuntime
    from hubtransfer.testing import tiny_spec

    strategy = None
    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif mode == "slow":
        strategy = tf.distribute.get_strategy()

    class CountingRuntime:
        # The real TensorFlow runtime, slowed down and counting the images it runs on.
        name = "tensorflow"

        def __init__(self, backbone, log):
            self._runtime = TensorFlowRuntime(backbone)
            self._log = log

        def __call__(self, batch):
            time.sleep(0.15)
            with open(self._log, "a") as handle:
                handle.write(f"{len(batch)}\\n")
            return self._runtime(batch)

    spec = tiny_spec(model)
    backbone = hubtransfer.load_backbone(spec)
    preprocessor = hubtransfer.Preprocessor.from_spec(spec)
    paths = sorted(str(p) for p in Path(images).rglob("*.png"))
    runtime = "tensorflow"
    if mode == "slow":
        runtime = CountingRuntime(backbone, out + ".count")
    features = hubtransfer.extract_features(
        backbone, preprocessor, paths, verbose=False, runtime=runtime, chunk_size=8,
        batch_size=4, strategy=strategy,
        store=hubtransfer.FeatureStore(store, feature_dim=backbone.output_dim),
    )
    result = {
        "replicas": 1 if strategy is None else strategy.num_replicas_in_sync,
        "features": features.tolist(),
    }
    if mode != "slow":
        model = hubtransfer.TransferClassifier(
            spec, epochs=4, batch_size=8, early_stopping=False, validation_split=0.25,
            verbose=0, runtime="tensorflow", strategy=strategy,
        ).fit(images)
        result["probabilities"] = model.predict_proba(paths[:6]).tolist()
    with open(out, "w") as handle:
        json.dump(result, handle)
"""


def _start(
    mode: str, model: Path, images: Path, store: Path, out: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    arguments = [mode, str(model), str(images), str(store), str(out)]
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WORKER), *arguments],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str], out: Path) -> dict[str, list[list[float]]]:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    result: dict[str, list[list[float]]] = json.loads(out.read_text())
    return result


@pytest.fixture(scope="module")
def single(
    tiny_models: dict[str, Path], images: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[list[float]]]:
    folder = tmp_path_factory.mktemp("single")
    env = {"HUBTRANSFER_CACHE_DIR": str(folder / "cache")}
    out = folder / "result.json"
    process = _start("single", tiny_models["fv"], images[0].parent.parent, folder, out, env)
    return _finish(process, out)


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpu_devices_matches_one_device(
    single: dict[str, list[list[float]]],
    tiny_models: dict[str, Path],
    images: list[Path],
    tmp_path: Path,
) -> None:
    env = {"HUBTRANSFER_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "mirrored.json"
    process = _start(
        "mirrored", tiny_models["fv"], images[0].parent.parent, tmp_path / "store", out, env
    )
    mirrored = _finish(process, out)
    assert mirrored["replicas"] == 2
    np.testing.assert_allclose(mirrored["features"], single["features"], **TOLERANCE)
    np.testing.assert_allclose(
        mirrored["probabilities"], single["probabilities"], rtol=1e-3, atol=1e-4
    )


@pytest.mark.slow
def test_two_workers_each_extract_their_share_and_match_one_device(
    single: dict[str, list[list[float]]],
    tiny_models: dict[str, Path],
    images: list[Path],
    tmp_path: Path,
) -> None:
    ports = free_loopback_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    store = tmp_path / "shared-store"
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {"TF_CONFIG": json.dumps(config), "HUBTRANSFER_CACHE_DIR": str(tmp_path / "cache")}
        out = tmp_path / f"worker{index}.json"
        processes.append(
            _start("multiworker", tiny_models["fv"], images[0].parent.parent, store, out, env)
        )
    results = [_finish(p, tmp_path / f"worker{i}.json") for i, p in enumerate(processes)]
    for result in results:
        assert result["replicas"] == 2
        np.testing.assert_allclose(result["features"], single["features"], **TOLERANCE)
        np.testing.assert_allclose(
            result["probabilities"], single["probabilities"], rtol=1e-3, atol=1e-4
        )
    # Each worker wrote only its own share: 40 distinct images, 20 each, none twice.
    written: dict[str, list[str]] = {"w0": [], "w1": []}
    for shard in store.glob("shard-*"):
        worker = shard.name.split("-")[2]
        written[worker] += np.load(shard / "digests.npy").tolist()
    assert len(written["w0"]) == len(written["w1"]) == 20
    assert not set(written["w0"]) & set(written["w1"])


@pytest.mark.slow
def test_a_killed_extraction_resumes_without_recomputing_finished_shards(
    tiny_models: dict[str, Path], images: list[Path], reference: np.ndarray, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    folder = images[0].parent.parent
    env = {"HUBTRANSFER_CACHE_DIR": str(tmp_path / "cache")}
    first = _start("slow", tiny_models["fv"], folder, store, tmp_path / "first.json", env)
    deadline = time.monotonic() + 120
    while len(list(store.glob("shard-*"))) < 2:
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no shard was written in 2 minutes"
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    finished = {
        shard.name: (shard.stat().st_ino, (shard / "features.npy").stat().st_mtime_ns)
        for shard in store.glob("shard-*")
    }
    done_rows = sum(len(np.load(store / name / "digests.npy")) for name in finished)
    assert 0 < done_rows < 40

    second = _start("slow", tiny_models["fv"], folder, store, tmp_path / "second.json", env)
    resumed = _finish(second, tmp_path / "second.json")
    for name, identity in finished.items():
        shard = store / name
        assert (shard.stat().st_ino, (shard / "features.npy").stat().st_mtime_ns) == identity
    computed = sum(int(n) for n in (tmp_path / "second.json.count").read_text().split())
    assert computed == 40 - done_rows
    rows = sum(len(np.load(shard / "digests.npy")) for shard in store.glob("shard-*"))
    assert rows == 40
    np.testing.assert_allclose(resumed["features"], reference, **TOLERANCE)
