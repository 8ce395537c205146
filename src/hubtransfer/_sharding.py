"""Feature extraction shared among the workers of a ``tf.distribute.Strategy``.

A frozen backbone's features do not depend on which process computes them,
so the work splits cleanly: the distinct images (by content digest, sorted)
are dealt round-robin to the workers, each worker extracts only its share,
writes it to the :class:`~hubtransfer.FeatureStore` as shards of
``chunk_size`` images, and then reads everyone's shards back. The store's
folder must therefore be on a filesystem every worker sees.

* Within a worker, a strategy with several local replicas (GPUs, or logical
  CPUs) splits each batch among them with ``strategy.run``; a worker with one
  CPU replica uses the usual runtime choice (TensorFlow Lite when exact).
* Only :class:`tf.distribute.MultiWorkerMirroredStrategy` has several workers:
  each process is one, placed by its ``cluster_resolver`` (``TF_CONFIG``).
  Every other strategy is driven by one client, which does all the work.
* Shards are renamed into place whole, so a crash loses at most the chunk in
  flight; a rerun finds the finished shards and extracts only the rest.
* Memory is bounded by a chunk, not by the data set: features go to disk as
  they are computed, and the final read-back can fill an ``np.memmap``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ._exceptions import InvalidParameterError, ShardTimeoutError
from ._features import (
    FeatureStore,
    ProgressCallback,
    _print_progress,
    _run,
    _RuntimeOnFirstBatch,
    file_digest,
)
from ._runtime import CONVERTED_RUNTIMES, FeatureRuntime, RuntimeChoice

if TYPE_CHECKING:
    from ._backbone import Backbone
    from ._preprocessing import Preprocessor

__all__ = ["extract_sharded", "worker_position", "worker_share"]

STALL_SECONDS: Final = 1800.0
"""How long a worker waits for the others' shards without any new one appearing."""
_POLL_SECONDS: Final = (0.05, 2.0)


def worker_position(strategy: Any) -> tuple[int, int]:
    """This process's ``(index, count)`` among the workers sharing extraction.

    Only ``MultiWorkerMirroredStrategy`` runs one program per worker; the
    chief (if any) comes first, then the workers in ``TF_CONFIG`` order.
    """
    if strategy is None:
        return 0, 1
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    tasks = [("chief", i) for i in range(len(spec.get("chief", [])))]
    tasks += [("worker", i) for i in range(len(spec.get("worker", [])))]
    if resolver is None or resolver.task_type is None or not tasks:
        return 0, 1
    current = (str(resolver.task_type), int(resolver.task_id))
    if current not in tasks:
        raise InvalidParameterError(
            f"This process is task {current[0]}:{current[1]} of the cluster, which takes no "
            "part in feature extraction: only 'chief' and 'worker' tasks extract. Call "
            "extract_features (or fit) on the chief and the workers."
        )
    return tasks.index(current), len(tasks)


def worker_share(digests: Sequence[str], index: int, count: int) -> list[str]:
    """The distinct digests worker ``index`` of ``count`` extracts.

    Deterministic on every worker, whatever order (or duplicates) its list
    has: the distinct digests, sorted, dealt round-robin.

    Example:
        >>> from hubtransfer._sharding import worker_share
        >>> worker_share(["d", "b", "a", "c", "a"], 1, 2)
        ['b', 'd']
    """
    return sorted(set(digests))[index::count]


def _local_replicas(strategy: Any) -> int:
    return len(strategy.extended.worker_devices)


def _uses_replicas(strategy: Any) -> bool:
    """Whether the backbone should run on the strategy's devices rather than the host CPU."""
    if strategy is None:
        return False
    try:
        devices = [str(d).upper() for d in strategy.extended.worker_devices]
    except RuntimeError:  # the default strategy has no devices of its own
        return False
    return len(devices) > 1 or any("CPU" not in device for device in devices)


class _ReplicaRuntime:
    """Runs the TensorFlow backbone on every local replica of a strategy.

    Each batch is padded (repeating its last image) to a multiple of the
    replica count and split evenly: a replica given no images fails inside
    some SavedModels, and equal parts keep one trace.
    """

    def __init__(self, backbone: Backbone, strategy: Any) -> None:
        import tensorflow as tf

        from ._backbone import Backbone

        # Loaded again under the scope, so the weights are mirrored onto each device.
        with strategy.scope():
            layer = Backbone(backbone.spec, path=backbone.path).layer
        self._strategy: Final = strategy
        self._replicas: Final = _local_replicas(strategy)
        self._output_dim: Final = backbone.output_dim

        def forward(images: Any) -> Any:
            return layer(images, training=False)

        self._step: Final[Any] = tf.function(
            lambda values: strategy.run(forward, args=(values,)), reduce_retracing=True
        )

    @property
    def name(self) -> str:
        """``"tensorflow"``: the backbone runs as TensorFlow on each replica."""
        return "tensorflow"

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Features of a float32 batch ``[n, height, width, 3]``."""
        import tensorflow as tf

        count = len(batch)
        if not count:
            return np.zeros((0, self._output_dim), np.float32)
        padded_size = math.ceil(count / self._replicas) * self._replicas
        if padded_size > count:
            filler = np.repeat(batch[-1:], padded_size - count, axis=0)
            batch = np.concatenate([batch, filler])
        parts = np.split(batch, self._replicas)
        values = self._strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(parts[context.replica_id_in_sync_group % self._replicas])
        )
        outputs = self._strategy.experimental_local_results(self._step(values))
        features = np.concatenate([np.asarray(part, np.float32) for part in outputs])
        return features[:count]


def _forward(
    backbone: Backbone,
    strategy: Any,
    runtime: RuntimeChoice | FeatureRuntime,
    images: int,
) -> _RuntimeOnFirstBatch:
    # TFLite and OpenVINO run on the CPU: replicas of them would only compete for it.
    if isinstance(runtime, str) and runtime not in CONVERTED_RUNTIMES and _uses_replicas(strategy):
        return _RuntimeOnFirstBatch(backbone, _ReplicaRuntime(backbone, strategy), images=images)
    return _RuntimeOnFirstBatch(backbone, runtime, images=images)


def _check_out(out: Any, rows: int, dim: int) -> npt.NDArray[np.float32] | None:
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (rows, dim):
        shape = getattr(out, "shape", None)
        raise InvalidParameterError(
            "The 'out' parameter of extract_features must be a float32 array shaped "
            f"({rows}, {dim}) (e.g. np.lib.format.open_memmap). Got {type(out).__name__} "
            f"shaped {shape} instead."
        )
    return out


def _wait_for_all(
    store: FeatureStore,
    unique: Sequence[str],
    count: int,
    report: ProgressCallback | None,
) -> None:
    """Waits until every worker's shards are in the store (a shared folder)."""
    missing = store.missing(unique)
    last_progress = time.monotonic()
    pause = _POLL_SECONDS[0]
    while missing:
        if report:
            report(len(unique) - len(missing), len(unique))
        time.sleep(pause)
        pause = min(pause * 2, _POLL_SECONDS[1])
        absent = store.missing([unique[i] for i in missing])
        still = [missing[i] for i in absent]
        if len(still) < len(missing):
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > STALL_SECONDS:
            late = sorted({i % count for i in still})
            raise ShardTimeoutError(
                f"No new features reached the feature store {str(store.directory)!r} for "
                f"{STALL_SECONDS:.0f} s; {len(still)} images are still missing, from the "
                f"shares of worker(s) {late} of {count}. Check that those workers are running "
                "with the same files, and that the store's folder is on a filesystem every "
                "worker sees (set HUBTRANSFER_CACHE_DIR to a shared path). Rerun to resume: "
                "finished shards are kept."
            )
        missing = still


def extract_sharded(
    backbone: Backbone,
    preprocessor: Preprocessor,
    files: Sequence[str],
    *,
    store: FeatureStore | None,
    strategy: Any,
    batch_size: int,
    chunk_size: int,
    verbose: bool,
    runtime: RuntimeChoice | FeatureRuntime,
    out: Any,
) -> npt.NDArray[np.float32]:
    """:func:`hubtransfer.extract_features` with a strategy or an ``out`` array."""
    if strategy is not None:
        import tensorflow as tf

        if not isinstance(strategy, tf.distribute.Strategy):
            raise InvalidParameterError(
                "The 'strategy' parameter of extract_features must be a "
                f"tf.distribute.Strategy or None. Got {type(strategy).__name__} instead."
            )
    dim = backbone.output_dim
    result = _check_out(out, len(files), dim)
    index, count = worker_position(strategy)
    if store is None:
        # Nowhere to share features: this worker extracts every file itself.
        if result is None:
            result = np.empty((len(files), dim), np.float32)
        report = _print_progress("Extracting features") if verbose else None
        forward = _forward(backbone, strategy, runtime, len(files))
        for start in range(0, len(files), chunk_size):
            part = files[start : start + chunk_size]
            result[start : start + len(part)] = _run(
                forward, preprocessor.dataset(part, batch_size=batch_size), dim
            )
            if report:
                report(start + len(part), len(files))
        return result
    digests = [file_digest(f) for f in files]
    first_file: dict[str, str] = {}
    for digest, file in zip(digests, files, strict=True):
        first_file.setdefault(digest, file)
    unique = sorted(first_file)
    share = unique[index::count]
    todo = [share[i] for i in store.missing(share)]
    label = "Extracting features" + (f" (worker {index + 1} of {count})" if count > 1 else "")
    report = _print_progress(label) if verbose else None
    if report and not todo:
        sys.stderr.write(f"{label}: all {len(share)} images found in the cache.\n")
    forward = _forward(backbone, strategy, runtime, len(todo))
    done = len(share) - len(todo)
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        chunk_files = [first_file[d] for d in chunk]
        features = _run(forward, preprocessor.dataset(chunk_files, batch_size=batch_size), dim)
        store.put(chunk, features, worker=index if count > 1 else None)
        done += len(chunk)
        if report:
            report(done, len(share))
    if count > 1:
        waiting = _print_progress("Waiting for the other workers' features") if verbose else None
        _wait_for_all(store, unique, count, waiting)
    if result is None:
        return store.get(digests)
    # Read back a chunk at a time: each get maps only the shards it needs, and unmaps them.
    for start in range(0, len(digests), chunk_size):
        part = digests[start : start + chunk_size]
        result[start : start + len(part)] = store.get(part)
    return result
