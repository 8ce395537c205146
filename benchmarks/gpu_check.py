"""GPU check: is the GPU used, and how fast does feature extraction run on it?

Run on a machine with a GPU (``python benchmarks/gpu_check.py --json out.json``).
It prints the devices TensorFlow sees, places the embedded EfficientNet-Lite0
forward pass on the first GPU, checks with device placement that the
convolutions really ran there, and reports the extraction throughput for
several batch sizes (median of repeats), next to the CPU figure from the
same process. It exits 1 when no GPU is visible.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _throughput(function: Any, batch: Any, repeats: int) -> float:
    function(batch).numpy()  # trace and warm up
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(batch).numpy()
        rates.append(int(batch.shape[0]) / (time.perf_counter() - started))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    import hubtransfer

    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}")
    print(f"GPUs: {[d.get('device_name', g.name) for g, d in zip(gpus, details, strict=True)]}")
    if not gpus:
        print("No GPU is visible to TensorFlow.", file=sys.stderr)
        return 1
    backbone = hubtransfer.load_backbone(hubtransfer.DEFAULT_BACKBONE)
    height, width = backbone.spec.input_size
    results: dict[str, Any] = {
        "device": details[0].get("device_name", gpus[0].name),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "backbone": backbone.spec.name,
        "batches": {},
    }
    forward = tf.function(lambda images: backbone.layer(images, training=False))
    tf.debugging.set_log_device_placement(True)
    with tf.device("/GPU:0"):
        probe = tf.random.uniform((2, height, width, 3))
        placed = forward(probe)
    tf.debugging.set_log_device_placement(False)
    results["output_device"] = placed.device
    print(f"Output tensor placed on: {placed.device}")
    for size in (int(s) for s in args.batch_sizes.split(",")):
        batch = tf.random.uniform((size, height, width, 3))
        with tf.device("/GPU:0"):
            gpu_rate = _throughput(forward, batch, args.repeats)
        with tf.device("/CPU:0"):
            cpu_rate = _throughput(forward, batch[: min(size, 32)], max(1, args.repeats // 2))
        results["batches"][str(size)] = {"gpu_img_per_s": gpu_rate, "cpu_img_per_s": cpu_rate}
        print(f"batch {size:4d}: GPU {gpu_rate:9.1f} img/s, CPU {cpu_rate:7.1f} img/s")
    used = "GPU" in str(results["output_device"]).upper()
    results["gpu_used"] = used
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if used else 1


if __name__ == "__main__":
    sys.exit(main())
