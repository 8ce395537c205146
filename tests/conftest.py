"""Shared fixtures: an isolated cache per test session, tiny real SavedModels."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HUBTRANSFER_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs the internet; set HUBTRANSFER_NETWORK_TESTS=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """The cache folder every test in this session shares."""
    return Path(os.environ["HUBTRANSFER_CACHE_DIR"])


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder of this test's own (for tests that break or inspect the cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HUBTRANSFER_CACHE_DIR", str(cache))
    monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    yield cache


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny real TF-Hub-format SavedModels: a feature vector and two classifiers."""
    from hubtransfer.testing import make_tiny_savedmodel

    root = tmp_path_factory.mktemp("tiny-models")
    return {
        "fv": make_tiny_savedmodel(root / "fv", output="feature_vector", output_dim=8),
        "logits": make_tiny_savedmodel(
            root / "logits", output="classification", output_dim=1001, seed=1
        ),
    }
