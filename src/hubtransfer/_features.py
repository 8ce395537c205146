"""Backbone features, computed once per image and kept on disk.

A frozen backbone maps the same image to the same features every time, so a
head trained for twenty epochs needs one backbone pass, not twenty. The
:class:`FeatureStore` keys features by the backbone's weights (a content
hash), the preprocessing contract and each image file's SHA-256; a second
fit on the same files with other head settings reads them back with no
backbone work at all.

The store is a folder of shards, each written to a temporary folder and
renamed into place: a crash mid-extraction loses at most the shard in
flight, and completed shards are never recomputed.

A cache is verified before it is trusted: each shard carries the SHA-256 of
its two arrays (``checksums.json``), checked when the shard is first read in
a process (and again whenever its files change). A shard whose bytes changed
on disk is reported, removed and its images are extracted again: it is
never served. A shard written before shards carried checksums is still
read, checked for what can be checked without them (its shape, its type,
finite values); one that fails is removed and recomputed. A shard of another
feature width (another spec of the same weights) is left alone.

Extraction runs on the fastest exact runtime (:mod:`hubtransfer._runtime`):
TensorFlow Lite with XNNPACK when the backbone converts and its features
match TensorFlow's, else TensorFlow. The store's key does *not* include the
runtime. The two agree to within ``1e-4 + 1e-3 * |feature|`` (checked before
TFLite is used; ~1e-5 measured on EfficientNet-Lite0), the size of the
differences TensorFlow itself shows between CPUs and builds, and far below
what changes a trained head's predictions. Keying by runtime would make a
fallback to TensorFlow, or a machine without TFLite, extract everything
again, and would orphan every existing store, for no difference in results.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ._cache import UnchangedFileMemo, cache_dir, file_sha256
from ._doctor import bad_images_error, find_bad_images
from ._exceptions import InvalidParameterError
from ._files import is_write_fault, max_file_bytes, open_regular, read_npy_header, read_regular
from ._runtime import RUNTIME_CHOICES, FeatureRuntime, RuntimeChoice, select_runtime
from ._seams import pause_point
from ._spec import PreprocessingContract

if TYPE_CHECKING:
    from ._backbone import Backbone
    from ._preprocessing import Preprocessor

__all__ = ["FeatureStore", "extract_features", "file_digest"]

_STORE_VERSION: Final = 2
DEFAULT_CHUNK: Final = 1024
"""Images per shard: bounds memory during extraction and the work a crash loses."""
AUTO_CONVERSION_MIN_IMAGES: Final = 2000
"""Images a job needs before ``runtime="auto"`` converts a backbone to TFLite.

Converting and checking take ~10 s once; TFLite then saves ~2 ms per image
end to end on 2 cores, so a job pays for the conversion by itself from
~4,000-5,000 images, and every later job reuses the converted model,
whatever its size. Smaller jobs use TensorFlow until a model is converted.
"""


def file_digest(path: str | os.PathLike[str]) -> str:
    """Returns the SHA-256 of an image file's bytes, as hex.

    Raises:
        OSError: If the file cannot be read, is not a regular file (a FIFO, a
            device), or is over the file-size limit
            (:func:`hubtransfer._files.max_file_bytes`).
    """
    return file_sha256(path, limit=max_file_bytes())


_digests: Final[UnchangedFileMemo[str]] = UnchangedFileMemo()


def cached_digest(path: str | os.PathLike[str]) -> str:
    """:func:`file_digest`, remembered in this process while the file is unchanged.

    One fit hashes each file up to three times (the bad-file screen, the
    training and the validation features); this hashes it once. See
    :class:`hubtransfer._cache.UnchangedFileMemo` for what counts as unchanged.
    """
    return _digests.get(path, file_digest)


class FeatureStore:
    """An on-disk table from image digest to backbone features.

    Args:
        directory: The store's folder (created on first write).
        feature_dim: Width of the feature vectors.

    Example:
        >>> import tempfile, numpy as np, hubtransfer
        >>> store = hubtransfer.FeatureStore(tempfile.mkdtemp(), feature_dim=2)
        >>> store.put(["a" * 64], np.array([[1.0, 2.0]], np.float32))
        >>> store.get(["a" * 64])
        array([[1., 2.]], dtype=float32)
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, feature_dim: int, verify: bool = True
    ) -> None:
        if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1:
            raise InvalidParameterError(
                "The 'feature_dim' parameter of FeatureStore must be a positive int. "
                f"Got {feature_dim!r} instead."
            )
        self.directory: Final = Path(directory)
        self.feature_dim: Final = feature_dim
        self.verify: Final = verify
        self._index: dict[str, tuple[Path, int]] = {}
        self._seen_shards: set[str] = set()
        # Features files checked against their checksum, by (path, inode, size, mtime).
        self._verified: set[tuple[Any, ...]] = set()
        # Features the store could not write (read-only or full cache): kept for this process.
        self._in_memory: dict[str, npt.NDArray[np.float32]] = {}
        self._write_fault: str | None = None

    @classmethod
    def for_backbone(
        cls,
        backbone: Backbone,
        contract: PreprocessingContract,
        *,
        root: str | os.PathLike[str] | None = None,
        verify: bool = True,
    ) -> FeatureStore:
        """The store for one backbone's weights and one preprocessing contract.

        Args:
            backbone: The loaded backbone (its content hash is part of the key).
            contract: How images are preprocessed (part of the key).
            root: Parent folder of stores; default ``cache_dir() / "features"``.
            verify: Check each shard's checksums before its features are used
                (the default; ``False`` only to measure what checking costs).
        """
        key = json.dumps(
            {
                "version": _STORE_VERSION,
                "backbone": backbone.content_hash,
                "contract": contract.to_json(),
            },
            sort_keys=True,
        )
        name = hashlib.sha256(key.encode("utf8")).hexdigest()[:32]
        base = Path(root) if root is not None else cache_dir() / "features"
        return cls(base / name, feature_dim=backbone.output_dim, verify=verify)

    def _refresh(self) -> None:
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob("shard-*")):
            if shard.name in self._seen_shards:
                continue
            try:
                sums = _read_checksums(shard)
                data = read_regular(shard / _DIGESTS, limit=_MAX_DIGEST_BYTES)
                digests = np.load(io.BytesIO(data), allow_pickle=False)
                if digests.ndim != 1 or digests.dtype.kind != "U":
                    raise ValueError(f"{_DIGESTS} holds {digests.shape} {digests.dtype}")
                if sums is None:
                    # Written before shards carried checksums: its width is in its header.
                    rows, width = _npy_shape(shard / _FEATURES)
                    if rows != len(digests):
                        raise ValueError(f"{_FEATURES} has {rows} rows for {len(digests)} digests")
                else:
                    width = sums["feature_dim"]
                    if self.verify and hashlib.sha256(data).hexdigest() != sums["digests"]:
                        raise ValueError(f"{_DIGESTS} does not match its checksum")
                    if len(digests) != sums["rows"]:
                        raise ValueError(
                            f"{_DIGESTS} holds {len(digests)} rows, not {sums['rows']}"
                        )
            except (OSError, ValueError, EOFError, KeyError, TypeError) as error:
                # numpy raises EOFError for an empty .npy file, ValueError for a short one.
                self._discard(shard, f"it cannot be read ({error})")
                continue
            self._seen_shards.add(shard.name)
            if width != self.feature_dim:
                # Another spec of the same weights and contract: its shard, not ours to judge.
                continue
            for row, digest in enumerate(digests.tolist()):
                self._index[str(digest)] = (shard, row)

    def _discard(self, shard: Path, why: str) -> None:
        warnings.warn(
            f"The feature-cache shard {str(shard)!r} is damaged: {why}. It is never used: it "
            "is removed and its images are extracted again.",
            stacklevel=4,
        )
        shutil.rmtree(shard, ignore_errors=True)
        self._seen_shards.discard(shard.name)
        for digest in [d for d, (where, _) in self._index.items() if where == shard]:
            del self._index[digest]

    def _identity(self, shard: Path) -> tuple[Any, ...]:
        # Both arrays: digests rewritten after indexing would pair rows with other images.
        identity: list[Any] = [str(shard)]
        for name in (_FEATURES, _DIGESTS):
            status = os.stat(shard / name)
            identity += [status.st_ino, status.st_size, status.st_mtime_ns]
        return tuple(identity)

    def _read_verified(self, shard: Path) -> npt.NDArray[np.float32] | None:
        """The shard's features, read and checked; None (and the shard removed) if they fail.

        A shard with checksums must match them. One written before shards
        carried checksums can only be checked for what it claims: its shape,
        its type and finite values.
        """
        try:
            sums = _read_checksums(shard)
            identity = self._identity(shard)
            digests = read_regular(shard / _DIGESTS, limit=_MAX_DIGEST_BYTES)
            rows = len(np.load(io.BytesIO(digests), allow_pickle=False))
            if sums is not None and hashlib.sha256(digests).hexdigest() != sums["digests"]:
                raise ValueError(f"{_DIGESTS} does not match its checksum")
            expected = rows * self.feature_dim * 4
            if identity[2] > expected + _NPY_HEADER_ROOM:
                raise ValueError(f"{_FEATURES} is {identity[2]} bytes, more than its rows need")
            data = read_regular(shard / _FEATURES, limit=expected + _NPY_HEADER_ROOM)
            if sums is not None and hashlib.sha256(data).hexdigest() != sums["features"]:
                raise ValueError(f"{_FEATURES} does not match its checksum")
            features: npt.NDArray[np.float32] = np.load(io.BytesIO(data), allow_pickle=False)
            if features.shape != (rows, self.feature_dim) or features.dtype != np.float32:
                raise ValueError(f"{_FEATURES} holds {features.shape} {features.dtype}")
            if sums is None and not np.isfinite(features).all():
                raise ValueError(f"{_FEATURES} holds values that are not finite")
        except (OSError, ValueError, EOFError, KeyError, TypeError) as error:
            self._discard(shard, f"its features fail their check ({error})")
            return None
        self._verified.add(identity)
        return features

    def _verify_shards(self, shards: Iterable[Path]) -> None:
        """Checks the features of shards not checked yet; removes the ones that fail."""
        if not self.verify:
            return
        for shard in set(shards):
            try:
                known = self._identity(shard) in self._verified
            except OSError:
                known = False
            if not known:
                self._read_verified(shard)

    def __contains__(self, digest: object) -> bool:
        self._refresh()
        return digest in self._index or digest in self._in_memory

    def __len__(self) -> int:
        self._refresh()
        return len(self._index.keys() | self._in_memory.keys())

    def missing(self, digests: Sequence[str]) -> list[int]:
        """Positions of the digests without stored features (or whose shard failed its check)."""
        self._refresh()
        self._verify_shards(self._index[d][0] for d in digests if d in self._index)
        return [
            i
            for i, digest in enumerate(digests)
            if digest not in self._index and digest not in self._in_memory
        ]

    def put(
        self, digests: Sequence[str], features: npt.ArrayLike, *, worker: int | None = None
    ) -> None:
        """Stores features for digests, as one new shard written atomically.

        If the cache folder cannot be written (read-only, full, forbidden),
        the features are kept in memory for this process instead, with one
        warning naming the folder.

        Args:
            digests: File digests (see :func:`file_digest`).
            features: ``[len(digests), feature_dim]`` features.
            worker: The index of the worker writing it, when several share
                the store; it goes into the shard's name, for people reading
                the folder.
        """
        array = np.ascontiguousarray(features, dtype=np.float32)
        if array.shape != (len(digests), self.feature_dim):
            raise InvalidParameterError(
                f"FeatureStore.put needs features shaped ({len(digests)}, {self.feature_dim}); "
                f"got {array.shape}."
            )
        if not len(digests):
            return
        if self._write_fault is None:
            try:
                self._write_shard(digests, array, worker)
                return
            except OSError as error:
                if not is_write_fault(error):
                    raise
                self._write_fault = f"{error.strerror or error}"
                warnings.warn(
                    f"The feature cache {str(self.directory)!r} cannot be written "
                    f"({self._write_fault}: {error.filename!r}); features are kept in memory "
                    "for this run only. Set HUBTRANSFER_CACHE_DIR to a writable folder with "
                    "free space to keep them, or pass cache_features=False (--no-cache) to "
                    "go without.",
                    stacklevel=2,
                )
        for row, digest in enumerate(digests):
            self._in_memory[digest] = array[row].copy()

    def _write_shard(
        self, digests: Sequence[str], array: npt.NDArray[np.float32], worker: int | None
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        writer = f"-w{worker}" if worker is not None else ""
        name = f"shard-{time.time_ns():020d}{writer}-{uuid.uuid4().hex[:8]}"
        temporary = self.directory / f".{name}.tmp"
        temporary.mkdir()
        try:
            # dtype=str sizes the strings to the longest key; a fixed width would cut longer ones.
            digest_bytes = _npy_bytes(np.asarray(list(digests), dtype=str))
            feature_bytes = _npy_bytes(array)
            (temporary / _DIGESTS).write_bytes(digest_bytes)
            (temporary / _FEATURES).write_bytes(feature_bytes)
            checksums = {
                "version": 1,
                "rows": len(digests),
                "feature_dim": self.feature_dim,
                "digests": hashlib.sha256(digest_bytes).hexdigest(),
                "features": hashlib.sha256(feature_bytes).hexdigest(),
            }
            (temporary / _CHECKSUMS).write_text(json.dumps(checksums), encoding="utf8")
            pause_point("shard:written")
            os.replace(temporary, self.directory / name)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def get(
        self, digests: Sequence[str], *, out: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float32]:
        """Returns the stored features of ``digests``, in order.

        Each shard's features are checked against its checksum the first
        time this process reads it (and again if its file changed); a shard
        that fails is removed and its digests raise ``KeyError``, as if they
        had never been stored.

        Args:
            digests: Digests that are all in the store.
            out: Optional array (e.g. an ``np.memmap``) to fill instead of a
                new in-memory one, for data sets larger than memory.

        Raises:
            KeyError: If a digest is not stored (or its shard failed its check).
        """
        self._refresh()
        result = out if out is not None else np.empty((len(digests), self.feature_dim), np.float32)
        by_shard: dict[Path, list[tuple[int, int]]] = {}
        for position, digest in enumerate(digests):
            if digest in self._in_memory:
                result[position] = self._in_memory[digest]
                continue
            shard, row = self._index[digest]
            by_shard.setdefault(shard, []).append((position, row))
        for shard, pairs in by_shard.items():
            stored: npt.NDArray[np.float32] | None = None
            if self.verify:
                try:
                    checked = self._identity(shard) in self._verified
                except OSError:
                    checked = False
                if not checked:
                    stored = self._read_verified(shard)
                    if stored is None:
                        raise KeyError(
                            f"the features of {len(pairs)} image(s) were in the shard "
                            f"{str(shard)!r}, which failed its check and was removed"
                        )
            if stored is None:
                stored = np.load(shard / _FEATURES, mmap_mode="r", allow_pickle=False)
            positions = np.fromiter((p for p, _ in pairs), np.int64, len(pairs))
            rows = np.fromiter((r for _, r in pairs), np.int64, len(pairs))
            result[positions] = stored[rows]
        return result


_DIGESTS: Final = "digests.npy"
_FEATURES: Final = "features.npy"
_CHECKSUMS: Final = "checksums.json"
_NPY_HEADER_ROOM: Final = 4096
_MAX_DIGEST_BYTES: Final = 1 << 30


def _npy_bytes(array: npt.NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_shape(file: Path) -> tuple[int, int]:
    """The (rows, width) a ``.npy`` file's header declares (a 2-D float32 array), unread."""
    with open_regular(file, limit=None) as stream:
        shape, dtype = read_npy_header(stream)
    if len(shape) != 2 or dtype != np.float32:
        raise ValueError(f"{_FEATURES} holds {shape} {dtype}, not float32 rows")
    return int(shape[0]), int(shape[1])


def _read_checksums(shard: Path) -> dict[str, Any] | None:
    """A shard's checksums, or None if it has none; raises ValueError if they are malformed."""
    try:
        text = read_regular(shard / _CHECKSUMS, limit=1 << 16)
    except FileNotFoundError:
        return None
    sums = json.loads(text.decode("utf8"))
    if not (
        isinstance(sums, dict)
        and isinstance(sums.get("rows"), int)
        and isinstance(sums.get("feature_dim"), int)
        and isinstance(sums.get("digests"), str)
        and isinstance(sums.get("features"), str)
    ):
        raise ValueError(f"{_CHECKSUMS} is malformed")
    return sums


ProgressCallback = Callable[[int, int], None]


def _print_progress(label: str) -> ProgressCallback:
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        rate = done / elapsed if elapsed > 0 else 0.0
        end = "\n" if done >= total else "\r"
        sys.stderr.write(f"{label}: {done}/{total} images ({rate:.0f} img/s){end}")
        sys.stderr.flush()

    return report


class _RuntimeOnFirstBatch:
    """Selects the runtime when the first batch arrives, so it can check on real images."""

    def __init__(
        self, backbone: Backbone, choice: RuntimeChoice | FeatureRuntime, *, images: int
    ) -> None:
        self._backbone = backbone
        self._convert = images >= AUTO_CONVERSION_MIN_IMAGES
        self._choice: RuntimeChoice = "auto"
        self._runtime: FeatureRuntime | None = None
        if isinstance(choice, str):
            self._choice = choice
        else:
            self._runtime = choice

    def __call__(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._runtime is None:
            self._runtime = select_runtime(
                self._backbone, runtime=self._choice, sample=batch, convert=self._convert
            )
        return self._runtime(batch)


class _ShardWriter:
    """Collects features batch by batch and stores each ``chunk_size`` of them as a shard."""

    def __init__(
        self,
        store: FeatureStore,
        chunk_size: int,
        *,
        on_stored: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self._store = store
        self._chunk_size = chunk_size
        self._on_stored = on_stored
        self._keys: list[str] = []
        self._parts: list[npt.NDArray[np.float32]] = []
        self.seen = 0

    def add(self, keys: Sequence[str], features: npt.NDArray[np.float32]) -> None:
        self._keys += keys
        self._parts.append(features)
        self.seen += len(keys)
        while len(self._keys) >= self._chunk_size:
            self._store_first(self._chunk_size)

    def flush(self) -> None:
        if self._keys:
            self._store_first(len(self._keys))

    def _store_first(self, count: int) -> None:
        keys = self._keys[:count]
        features = np.concatenate(self._parts)
        self._store.put(keys, features[:count])
        self._keys = self._keys[count:]
        self._parts = [features[count:]] if self._keys else []
        if self._on_stored is not None:
            self._on_stored(keys)


def _first_of_each(digests: Sequence[str], positions: Iterable[int]) -> dict[str, int]:
    """The first of ``positions`` holding each digest: identical files are extracted once."""
    first: dict[str, int] = {}
    for position in positions:
        first.setdefault(digests[position], position)
    return first


def _store_features(
    store: FeatureStore,
    keys: Sequence[str],
    batches: Iterable[tuple[Any, Any]],
    forward: _RuntimeOnFirstBatch,
    *,
    chunk_size: int,
    on_stored: Callable[[Sequence[str]], None],
) -> set[str]:
    """Runs the backbone over ``batches`` and stores the features in shards of ``chunk_size``.

    Each batch is ``(indexes, images)``: the indexes into ``keys`` of its
    images, or ``None`` when they are simply the next ones in order.

    Returns:
        The keys whose features were stored.
    """
    writer = _ShardWriter(store, chunk_size, on_stored=on_stored)
    stored: set[str] = set()
    for indexes, images in batches:
        array = np.asarray(images, np.float32)
        if indexes is None:
            chosen = list(keys[writer.seen : writer.seen + len(array)])
        else:
            chosen = [keys[int(i)] for i in np.asarray(indexes)]
        stored.update(chosen)
        writer.add(chosen, forward(array))
    writer.flush()
    return stored


@contextlib.contextmanager
def _naming_bad_files(
    files: Sequence[str],
    preprocessor: Preprocessor,
    *,
    total: int | None = None,
    store: FeatureStore | None = None,
) -> Iterator[None]:
    """Turns a decoding error inside the pipeline into one that names every bad file.

    The header check before the pipeline catches most bad files; one that
    is damaged further in fails inside ``tf.data`` with an error that does
    not say which file it was. Files whose features ``store`` holds have
    decoded before, so they are not decoded again to look.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as error:
        bad = find_bad_images(files, max_pixels=preprocessor.max_pixels, known_good=store)
        if not bad:
            raise
        raise bad_images_error(bad, total or len(files), training=False) from error


def _check_runtime(runtime: object) -> RuntimeChoice | FeatureRuntime:
    if runtime in RUNTIME_CHOICES or (
        not isinstance(runtime, str) and isinstance(runtime, FeatureRuntime)
    ):
        return runtime
    raise InvalidParameterError(
        "The 'runtime' parameter of extract_features must be one of "
        f"{', '.join(map(repr, RUNTIME_CHOICES))} or a FeatureRuntime. Got {runtime!r} instead."
    )


def _run(runtime: _RuntimeOnFirstBatch, dataset: Any, dim: int) -> npt.NDArray[np.float32]:
    # tf.data decodes and resizes the next batches in its own threads while the
    # runtime works on this one (TFLite's invoke releases the GIL).
    outputs = [runtime(np.asarray(batch, np.float32)) for batch in dataset]
    if not outputs:
        return np.zeros((0, dim), np.float32)
    return np.concatenate(outputs)


def extract_features(
    backbone: Backbone,
    preprocessor: Preprocessor,
    paths: Sequence[str | os.PathLike[str]],
    *,
    store: FeatureStore | None = None,
    batch_size: int = 64,
    chunk_size: int = DEFAULT_CHUNK,
    verbose: bool = True,
    runtime: RuntimeChoice | FeatureRuntime = "auto",
    strategy: Any = None,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Runs the backbone over image files once, reusing stored features.

    Images are decoded and resized in parallel by a ``tf.data`` pipeline
    while the backbone runs. With a ``store``, only images whose features are
    not stored yet are processed, in chunks of ``chunk_size`` that are each
    saved as soon as they are done.

    Args:
        backbone: A loaded (frozen) backbone.
        preprocessor: The preprocessor for the backbone's contract.
        paths: Image files.
        store: Optional feature store to read from and write to.
        batch_size: Images per batch from the decoding pipeline.
        chunk_size: Images per stored shard.
        verbose: Whether to print progress to stderr.
        runtime: ``"auto"`` (TensorFlow Lite when it converts and matches
            TensorFlow, else TensorFlow with a warning; a backbone not yet
            converted is converted only for :data:`AUTO_CONVERSION_MIN_IMAGES`
            images or more; OpenVINO first when it is installed),
            ``"openvino"``, ``"tflite"``, ``"tensorflow"``, or a
            :class:`FeatureRuntime` to use as is. See
            :func:`hubtransfer._runtime.select_runtime`. Chosen only when
            some image needs the backbone; the first batch joins the check.
        strategy: A ``tf.distribute.Strategy`` to extract under. Its local
            replicas split each batch (TensorFlow on each device, unless
            ``runtime="tflite"`` or the worker has one CPU replica). With
            ``MultiWorkerMirroredStrategy`` each worker extracts only its
            share of the distinct images into ``store`` (which must be on a
            filesystem all workers see), then waits for the others' shards
            and returns every feature. See the "Scaling out" guide.
        out: Optional ``float32`` array ``[len(paths), output_dim]`` (e.g. an
            ``np.memmap``) to fill and return, so that memory stays bounded
            by one chunk however many images there are.

    Returns:
        ``float32`` features ``[len(paths), backbone.output_dim]`` (``out``
        when given).

    Raises:
        TFLiteUnavailableError: With ``runtime="tflite"``, if the backbone
            cannot run on TensorFlow Lite exactly.
        ShardTimeoutError: With several workers, if the others' features stop
            arriving in the store for :data:`hubtransfer._sharding.STALL_SECONDS`.
    """
    files = [os.fspath(p) for p in paths]
    choice = _check_runtime(runtime)
    if strategy is not None or out is not None:
        from ._sharding import extract_sharded

        with _naming_bad_files(files, preprocessor, store=store):
            return extract_sharded(
                backbone,
                preprocessor,
                files,
                store=store,
                strategy=strategy,
                batch_size=batch_size,
                chunk_size=chunk_size,
                verbose=verbose,
                runtime=choice,
                out=out,
            )
    dim = backbone.output_dim
    report = _print_progress("Extracting features") if verbose else None
    if store is None:
        forward = _RuntimeOnFirstBatch(backbone, choice, images=len(files))
        with _naming_bad_files(files, preprocessor):
            features = _run(forward, preprocessor.dataset(files, batch_size=batch_size), dim)
        if report:
            report(len(files), len(files))
        return features
    try:
        digests = [cached_digest(f) for f in files]
    except OSError:
        # A file that cannot be hashed (missing, a FIFO, a device, over the size limit):
        # the check names every such file at once.
        bad = find_bad_images(files, max_pixels=preprocessor.max_pixels, known_good=store)
        if not bad:
            raise
        raise bad_images_error(bad, len(files), training=False) from None
    todo = store.missing(digests)
    first_position = _first_of_each(digests, todo)
    unique_todo = list(first_position)
    copies = collections.Counter(digests[i] for i in todo)
    done = [len(files) - len(todo)]

    def stored(keys: Sequence[str]) -> None:
        done[0] += sum(copies[d] for d in keys)
        if report:
            report(done[0], len(files))

    forward = _RuntimeOnFirstBatch(backbone, choice, images=len(unique_todo))
    todo_files = [files[first_position[d]] for d in unique_todo]
    with _naming_bad_files(todo_files, preprocessor, total=len(files)):
        # One pipeline for every file, so decoding never stops between shards.
        data = preprocessor.dataset(todo_files, batch_size=batch_size)
        batches = ((None, batch) for batch in data)
        _store_features(
            store, unique_todo, batches, forward, chunk_size=chunk_size, on_stored=stored
        )
    if report and not todo:
        sys.stderr.write(f"Features of all {len(files)} images found in the cache.\n")
    return store.get(digests)


def extract_into_store(
    backbone: Backbone,
    preprocessor: Preprocessor,
    paths: Sequence[str | os.PathLike[str]],
    *,
    store: FeatureStore,
    batch_size: int = 64,
    chunk_size: int = DEFAULT_CHUNK,
    verbose: bool = True,
    runtime: RuntimeChoice | FeatureRuntime = "auto",
) -> list[int]:
    """Stores the features of every usable file not stored yet; returns the others.

    Unlike :func:`extract_features` it does not stop at a file that cannot be
    decoded: the file is left out (the store only ever holds features of
    images that decoded), and its position is returned so the caller can
    name it or drop it. This is how ``fit`` decodes each file once: a
    separate decoding pass to find bad files first would cost a sixth of
    the extraction again.

    Returns:
        Positions (into ``paths``) of the files whose features could not be
        computed, in order.
    """
    files = [os.fspath(p) for p in paths]
    choice = _check_runtime(runtime)
    # Every file's header, stored or not: the pixel limit is not part of the store's key.
    checks = preprocessor._file_problems(files)
    unreadable: list[int] = []
    digests: list[str] = []
    for position, (file, (problem, _)) in enumerate(zip(files, checks, strict=True)):
        try:
            if problem is not None:
                raise OSError(problem)
            digests.append(cached_digest(file))
        except OSError:
            unreadable.append(position)
            digests.append("")
    todo = [i for i in store.missing(digests) if digests[i]]
    first_position = _first_of_each(digests, todo)
    unique_todo = list(first_position)
    if not unique_todo:
        return unreadable
    report = _print_progress("Extracting features") if verbose else None
    done = [0]

    def stored(keys: Sequence[str]) -> None:
        done[0] += len(keys)
        if report:
            report(done[0], len(unique_todo))

    forward = _RuntimeOnFirstBatch(backbone, choice, images=len(unique_todo))
    # One pipeline for every file, so decoding never stops between shards.
    data = preprocessor._tolerant_dataset(
        [files[first_position[d]] for d in unique_todo],
        [checks[first_position[d]][1] for d in unique_todo],
        batch_size=batch_size,
    )
    decoded = _store_features(
        store, unique_todo, data, forward, chunk_size=chunk_size, on_stored=stored
    )
    failed_digests = set(unique_todo) - decoded
    return sorted([*unreadable, *(i for i in todo if digests[i] in failed_digests)])
