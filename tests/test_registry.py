"""The backbone registry: registration, lookup, filtering and entry-point plugins."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubtransfer
from hubtransfer import (
    BackbonePluginError,
    BackboneRegistry,
    BackboneSpec,
    DuplicateBackboneError,
    UnknownBackboneError,
)


def _spec(name: str = "tiny_fv", **changes: object) -> BackboneSpec:
    base = BackboneSpec(
        name=name,
        handle=f"/models/{name}",
        input_size=(32, 32),
        output_kind="feature_vector",
        feature_dim=8,
        tags=frozenset({"tiny"}),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_register_then_get() -> None:
    registry = BackboneRegistry(entry_point_group=None)
    registry.register(_spec())
    assert registry.get("tiny_fv") == _spec()
    assert "tiny_fv" in registry


def test_duplicate_name_is_an_error_unless_replace() -> None:
    registry = BackboneRegistry([_spec()], entry_point_group=None)
    other = _spec(handle="/elsewhere")
    with pytest.raises(DuplicateBackboneError, match="replace=True"):
        registry.register(other)
    registry.register(other, replace=True)
    assert registry.get("tiny_fv").handle == "/elsewhere"
    # Registering the very same spec twice is harmless.
    registry.register(other)


def test_unknown_name_suggests_close_matches() -> None:
    registry = BackboneRegistry(
        [_spec("mobilenet_v2_fv"), _spec("resnet_fv")], entry_point_group=None
    )
    with pytest.raises(UnknownBackboneError, match="Did you mean 'mobilenet_v2_fv'"):
        registry.get("mobilenet_v2_f")
    with pytest.raises(LookupError):
        registry.get("completely-different")


def test_list_filters_by_tag_and_kind() -> None:
    classifier = BackboneSpec(
        name="tiny_classifier",
        handle="/m",
        input_size=(32, 32),
        output_kind="classification",
        num_classes=10,
        tags=frozenset({"tiny", "other"}),
    )
    registry = BackboneRegistry(
        [_spec(), classifier, _spec("b_fv", tags=frozenset())], entry_point_group=None
    )
    assert [s.name for s in registry.list()] == ["b_fv", "tiny_classifier", "tiny_fv"]
    assert [s.name for s in registry.list(tag="tiny")] == ["tiny_classifier", "tiny_fv"]
    assert [s.name for s in registry.list(output_kind="classification")] == ["tiny_classifier"]
    assert [s.name for s in registry.list(where=lambda s: s.name.startswith("b"))] == ["b_fv"]


def test_unregister() -> None:
    registry = BackboneRegistry([_spec()], entry_point_group=None)
    assert registry.unregister("tiny_fv").name == "tiny_fv"
    assert "tiny_fv" not in registry


def test_default_registry_has_the_embedded_backbone() -> None:
    spec = hubtransfer.get_backbone_spec("efficientnet_lite0_embedded_fv")
    assert spec.feature_dim == 1280
    assert spec.handle.startswith("embedded://")
    names = [s.name for s in hubtransfer.list_backbones(tag="offline")]
    assert "efficientnet_lite0_embedded_classifier" in names


def test_register_backbone_in_default_registry() -> None:
    spec = _spec("test_registered_fv")
    hubtransfer.register_backbone(spec)
    try:
        assert hubtransfer.get_backbone_spec("test_registered_fv") is spec
        with pytest.raises(DuplicateBackboneError):
            hubtransfer.register_backbone(dataclasses.replace(spec, handle="/other"))
    finally:
        hubtransfer.default_registry().unregister("test_registered_fv")


def _fake_distribution(root: Path, package: str, body: str, entry: str) -> None:
    """Writes an installed-looking distribution (code + dist-info) under ``root``."""
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text(textwrap.dedent(body))
    info = root / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[hubtransfer.backbones]\n{entry}\n")


@pytest.fixture
def plugin_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("ht_plugin_")]:
            del sys.modules[name]


GOOD_PLUGIN = """
    from hubtransfer import BackboneSpec

    LOADED = []

    def specs():
        LOADED.append(True)
        return [
            BackboneSpec(
                name="plugin_fv", handle="/plugin/fv", input_size=(64, 64),
                output_kind="feature_vector", feature_dim=16,
                tags=frozenset({"plugin"}),
            )
        ]
"""


def test_plugin_entry_point_is_loaded_lazily(plugin_path: Path) -> None:
    _fake_distribution(plugin_path, "ht_plugin_good", GOOD_PLUGIN, "good = ht_plugin_good:specs")
    registry = BackboneRegistry([_spec()])
    assert "ht_plugin_good" not in sys.modules
    assert registry.get("plugin_fv").feature_dim == 16
    assert sys.modules["ht_plugin_good"].LOADED == [True]
    assert [s.name for s in registry.list(tag="plugin")] == ["plugin_fv"]


def test_broken_plugin_names_its_entry_point(plugin_path: Path) -> None:
    _fake_distribution(
        plugin_path,
        "ht_plugin_broken",
        "raise RuntimeError('boom')\n",
        "broken = ht_plugin_broken:specs",
    )
    registry = BackboneRegistry()
    with pytest.raises(BackbonePluginError, match=r"'broken'.*ht_plugin_broken.*boom"):
        registry.get("anything")


def test_plugin_returning_junk_is_refused(plugin_path: Path) -> None:
    _fake_distribution(
        plugin_path,
        "ht_plugin_junk",
        "def specs():\n    return ['nope']\n",
        "junk = ht_plugin_junk:specs",
    )
    with pytest.raises(BackbonePluginError, match="not a BackboneSpec"):
        BackboneRegistry().list()


def test_plugin_clashing_with_builtin_is_refused(plugin_path: Path) -> None:
    body = GOOD_PLUGIN.replace('name="plugin_fv"', 'name="tiny_fv"')
    _fake_distribution(plugin_path, "ht_plugin_clash", body, "clash = ht_plugin_clash:specs")
    with pytest.raises(BackbonePluginError, match="tiny_fv"):
        BackboneRegistry([_spec()]).get("tiny_fv")
