"""HeadTrainer on memory-mapped features: trained batch by batch from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hubtransfer import DatasetError, HeadTrainer
from hubtransfer._head import _batches


def _memmap(path: Path, array: np.ndarray) -> np.memmap:
    stored = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=array.shape)
    stored[:] = array
    stored.flush()
    return np.load(path, mmap_mode="r")


def _problem(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = rng.normal(0, 3, (3, 16)).astype(np.float32)
    features = centres[labels] + rng.normal(0, 1, (n, 16)).astype(np.float32)
    return features.astype(np.float32), labels


def test_memory_mapped_features_train_like_in_memory_ones(tmp_path: Path) -> None:
    everything, all_labels = _problem(490)
    features, labels = everything[:400], all_labels[:400]
    valid_x, valid_y = everything[400:], all_labels[400:]
    mapped = _memmap(tmp_path / "features.npy", features)
    trainer = HeadTrainer(epochs=15, learning_rate=0.01, verbose=0, seed=2)
    trainer.fit(mapped, labels, validation_data=(_memmap(tmp_path / "v.npy", valid_x), valid_y))
    in_memory = HeadTrainer(epochs=15, learning_rate=0.01, verbose=0, seed=2)
    in_memory.fit(features, labels, validation_data=(valid_x, valid_y))
    streamed_accuracy = (trainer.predict_proba(valid_x).argmax(1) == valid_y).mean()
    memory_accuracy = (in_memory.predict_proba(valid_x).argmax(1) == valid_y).mean()
    assert streamed_accuracy > 0.9
    assert abs(streamed_accuracy - memory_accuracy) < 0.05
    np.testing.assert_allclose(
        trainer.predict_proba(mapped), trainer.predict_proba(features), rtol=1e-6
    )


def test_memory_mapped_batches_cover_every_row_once_per_epoch(tmp_path: Path) -> None:
    features, labels = _problem(103)
    mapped = _memmap(tmp_path / "features.npy", features)
    targets = np.eye(3, dtype=np.float32)[labels]
    data = _batches(mapped, targets, batch_size=10, seed=5, shuffle=True)
    for _ in range(2):
        rows = np.concatenate([batch.numpy() for batch, _ in data])
        assert rows.shape == features.shape
        # Every row appears exactly once: compare as sorted sets of rows.
        assert np.array_equal(np.unique(rows, axis=0), np.unique(features, axis=0))
    first = np.concatenate([b.numpy() for b, _ in data])
    second = np.concatenate([b.numpy() for b, _ in data])
    assert not np.array_equal(first, second), "each epoch should see a new order"


def test_non_finite_memory_mapped_features_are_refused(tmp_path: Path) -> None:
    features, labels = _problem(50)
    features[37, 3] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        HeadTrainer(epochs=1, verbose=0).fit(_memmap(tmp_path / "f.npy", features), labels)


def test_fit_streams_features_above_the_memory_budget(
    tiny_models: dict[str, Path],
    tmp_path: Path,
    isolated_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PIL import Image

    import hubtransfer
    from hubtransfer import _classifier
    from hubtransfer.testing import tiny_spec

    rng = np.random.default_rng(0)
    for name, colour in {"blue": (20, 20, 230), "red": (230, 20, 20)}.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for index in range(10):
            pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (32, 32, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "data" / name / f"{index}.png")
    seen: list[bool] = []
    original = HeadTrainer.fit

    def recording_fit(
        self: HeadTrainer, features: np.ndarray, *args: object, **kw: object
    ) -> object:
        seen.append(isinstance(features, np.memmap))
        return original(self, features, *args, **kw)  # type: ignore[arg-type]

    # A budget of 3 images' features: 16 training images must be memory-mapped.
    monkeypatch.setattr(_classifier, "IN_MEMORY_FEATURE_BYTES", 3 * 8 * 4)
    monkeypatch.setattr(HeadTrainer, "fit", recording_fit)
    model = hubtransfer.TransferClassifier(
        tiny_spec(tiny_models["fv"], name="stream_tiny_fv"), epochs=20, learning_rate=0.1, verbose=0
    ).fit(tmp_path / "data")
    assert seen == [True]
    assert model.score(tmp_path / "data") > 0.9
    assert not list((isolated_cache / "tmp").glob("*.npy")), "the temporary file is unlinked"


def _resident_file_mib() -> float:
    """Pages of mapped files in this process's resident set (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("this kernel does not report RssFile")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_released_pages_leave_the_resident_set_but_not_the_data(tmp_path: Path) -> None:
    from hubtransfer._head import release_mapped_pages

    values = np.random.default_rng(0).normal(size=(16_384, 1_024)).astype(np.float32)  # 64 MiB
    mapped = _memmap(tmp_path / "features.npy", values)
    before = _resident_file_mib()
    total = float(np.asarray(mapped, np.float64).sum())
    assert _resident_file_mib() - before > 48, "reading a map makes its pages resident"
    release_mapped_pages(mapped[100:200])  # a view shares its base's map
    assert _resident_file_mib() - before < 8
    assert float(np.asarray(mapped, np.float64).sum()) == total
    release_mapped_pages(values)  # not a map: nothing to do


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_streamed_batches_keep_few_pages_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubtransfer import _head

    features, labels = _problem(8_192)
    wide = np.repeat(features, 64, axis=1)  # 8,192 x 1,024 float32: 32 MiB on disk
    mapped = _memmap(tmp_path / "features.npy", wide)
    monkeypatch.setattr(_head, "_STREAM_CHUNK_BYTES", 4 << 20)
    targets = np.eye(3, dtype=np.float32)[labels]
    data = _batches(mapped, targets, batch_size=64, seed=1, shuffle=True)
    for _ in data:  # a first epoch maps in TensorFlow's own code, which is file-backed too
        pass
    base = _resident_file_mib()
    peak, rows = 0.0, 0
    for batch, _ in data:
        rows += len(batch)
        peak = max(peak, _resident_file_mib() - base)
    assert rows == len(wide)
    # Released every 4 MiB of batches: far below the 32 MiB one pass would leave behind.
    assert peak < 16, f"{peak:.1f} MiB of the file stayed resident"
    assert _resident_file_mib() - base < 4
