"""HeadTrainer under TensorFlow's own distribution engine, on this machine's CPUs.

Each test runs in fresh processes: logical devices and multi-worker
collectives must be configured before TensorFlow first touches a device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hubtransfer.testing import free_loopback_ports

pytestmark = pytest.mark.slow

WORKER = """
    import json, os, sys
    import numpy as np
    import tensorflow as tf

    mode, out = sys.argv[1], sys.argv[2]
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import hubtransfer

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    centres = rng.normal(0, 2, (3, 12)).astype(np.float32)
    features = (centres[labels] + rng.normal(0, 1, (240, 12))).astype(np.float32)
    strategy = None
    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    trainer = hubtransfer.HeadTrainer(
        epochs=8, batch_size=40, learning_rate=0.01, verbose=0, seed=1,
        early_stopping=False, strategy=strategy,
    )
    trainer.fit(features, labels, validation_data=(features[:60], labels[:60]))
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    result = {
        "replicas": replicas,
        "probabilities": trainer.predict_proba(features[:20]).tolist(),
        "loss": trainer.history_["loss"],
    }
    with open(out, "w") as handle:
        json.dump(result, handle)
"""


def _run(mode: str, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WORKER), mode, str(out)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str], out: Path) -> dict[str, object]:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    result: dict[str, object] = json.loads(out.read_text())
    return result


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("single") / "result.json"
    return _finish(_run("single", out), out)


def test_mirrored_strategy_over_two_cpu_devices_matches_one_device(
    single: dict[str, object], tmp_path: Path
) -> None:
    out = tmp_path / "mirrored.json"
    mirrored = _finish(_run("mirrored", out), out)
    assert mirrored["replicas"] == 2
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(
        mirrored["probabilities"], single["probabilities"], rtol=1e-3, atol=1e-4
    )


def test_multi_worker_strategy_with_two_processes_matches_one_device(
    single: dict[str, object], tmp_path: Path
) -> None:
    ports = free_loopback_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        processes.append(
            _run("multiworker", tmp_path / f"worker{index}.json", {"TF_CONFIG": json.dumps(config)})
        )
    results = [_finish(p, tmp_path / f"worker{i}.json") for i, p in enumerate(processes)]
    for result in results:
        assert result["replicas"] == 2
        np.testing.assert_allclose(result["loss"], single["loss"], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(
            result["probabilities"], single["probabilities"], rtol=1e-3, atol=1e-4
        )
