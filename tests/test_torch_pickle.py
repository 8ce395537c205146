"""Tests for the torch-free reader of legacy ``torch.save`` files.

The files here are written by a small writer of the legacy format built on the
pure-Python pickler, so that neither torch nor a fake ``torch`` module is needed.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hubtransfer import EmbeddedBackboneError
from hubtransfer._torch_pickle import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    load_legacy_state_dict,
)

# --- A writer of the legacy format -------------------------------------------------------


@dataclass(frozen=True)
class _Global:
    """A global written by name: ``torch._utils._rebuild_tensor_v2`` needs no torch."""

    module: str
    name: str

    def __call__(self, *args: object) -> object:  # pragma: no cover - only ever pickled
        raise AssertionError("written by name, never called")


@dataclass(frozen=True)
class _Storage:
    key: str
    type_name: str  # "FloatStorage", "HalfStorage", "LongStorage", ...
    data: np.ndarray[Any, Any]


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        hooks = collections.OrderedDict()  # type: ignore[var-annotated]
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, hooks)


@dataclass(frozen=True)
class _Call:
    """An object whose unpickling calls ``function(*args)``: what an attack looks like."""

    function: _Global
    args: tuple[object, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        return self.function, self.args


class _LegacyPickler(pickle._Pickler):
    """Writes :class:`_Global` by name and storages as persistent ids, as torch did."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_named_global(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))

    dispatch[_Global] = _save_named_global

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _Storage):
            storage_type = _Global("torch", obj.type_name)
            return ("storage", storage_type, obj.key, "cpu", int(obj.data.size), None)
        return None


def _dump(value: object) -> bytes:
    buffer = io.BytesIO()
    _LegacyPickler(buffer, protocol=2).dump(value)
    return buffer.getvalue()


def legacy_bytes(
    state: dict[str, object],
    storages: list[_Storage],
    *,
    magic: object = LEGACY_MAGIC_NUMBER,
    element_counts: dict[str, int] | None = None,
) -> bytes:
    """The bytes ``torch.save(state, f, _use_new_zipfile_serialization=False)`` writes."""
    system = {
        "protocol_version": LEGACY_PROTOCOL_VERSION,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    parts = [_dump(magic), _dump(LEGACY_PROTOCOL_VERSION), _dump(system)]
    parts.append(_dump(collections.OrderedDict(state)))
    parts.append(_dump([storage.key for storage in storages]))
    for storage in storages:
        count = (element_counts or {}).get(storage.key, storage.data.size)
        parts.append(struct.pack("<q", count))
        parts.append(storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes())
    return b"".join(parts)


def _strided(data: np.ndarray[Any, Any], tensor: _Tensor) -> np.ndarray[Any, Any]:
    """The tensor's values, computed element by element as PyTorch defines them."""
    expected = np.empty(tensor.size, dtype=data.dtype)
    for index in np.ndindex(*tensor.size):
        position = tensor.offset + sum(i * s for i, s in zip(index, tensor.stride, strict=True))
        expected[index] = data[position]
    return expected


@pytest.fixture
def sample() -> tuple[dict[str, object], list[_Storage]]:
    """A state dict shaped like the embedded file's: kernels stored transposed."""
    kernels = _Storage("1", "FloatStorage", np.arange(64, dtype=np.float32) * 0.5 - 7)
    half = _Storage("2", "HalfStorage", np.array([0.5, -2.0, 3.25], dtype=np.float16))
    count = _Storage("3", "LongStorage", np.array([12345], dtype=np.int64))
    state: dict[str, object] = {
        # (out, in, h, w) stored as (h, w, in, out), like every conv in the real file.
        "conv.weight": _Tensor(kernels, 0, (4, 3, 2, 2), (1, 4, 24, 12)),
        # A transposed matrix, like the real "_fc.weight", sharing the same storage.
        "fc.weight": _Tensor(kernels, 48, (3, 5), (1, 3)),
        "bias": _Tensor(kernels, 60, (4,), (1,)),
        "half": _Tensor(half, 0, (3,), (1,)),
        "bn.num_batches_tracked": _Tensor(count, 0, (), ()),
    }
    return state, [kernels, half, count]


# --- Reading ----------------------------------------------------------------------------


def test_strided_tensors_are_read_in_their_logical_layout(
    tmp_path: Path, sample: tuple[dict[str, object], list[_Storage]]
) -> None:
    state, storages = sample
    path = tmp_path / "sample.pth"
    path.write_bytes(legacy_bytes(state, storages))

    loaded = load_legacy_state_dict(path)

    # Integer bookkeeping buffers are dropped; float tensors keep file order.
    assert list(loaded) == ["conv.weight", "fc.weight", "bias", "half"]
    for name, array in loaded.items():
        tensor = state[name]
        assert isinstance(tensor, _Tensor)
        assert array.dtype == np.float32
        assert array.flags["C_CONTIGUOUS"]
        assert array.shape == tensor.size
        expected = _strided(tensor.storage.data, tensor).astype(np.float32)
        np.testing.assert_array_equal(array, expected)
    # The conv kernel really is the transpose of its storage, not a reshape.
    kernels = storages[0].data
    np.testing.assert_array_equal(
        loaded["conv.weight"], kernels[:48].reshape(2, 2, 3, 4).transpose(3, 2, 0, 1)
    )


def test_the_real_embedded_weights_load_without_torch() -> None:
    from hubtransfer._embedded import weights_path

    loaded = load_legacy_state_dict(weights_path())

    assert "torch" not in sys.modules
    assert len(loaded) == 247
    assert loaded["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert loaded["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert loaded["_fc.weight"].shape == (1000, 1280)
    assert not any(name.endswith("num_batches_tracked") for name in loaded)
    assert all(a.dtype == np.float32 and a.flags["C_CONTIGUOUS"] for a in loaded.values())
    assert all(np.isfinite(a).all() for a in loaded.values())
    # Dead channels have a variance of exactly 0; BatchNorm's epsilon covers them.
    assert all((loaded[n] >= 0).all() for n in loaded if n.endswith("running_var"))


# --- Refusing what is not a state dict ----------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "Popen")],
)
def test_a_pickle_naming_other_callables_is_refused_before_running(
    tmp_path: Path,
    sample: tuple[dict[str, object], list[_Storage]],
    module: str,
    name: str,
) -> None:
    state, storages = sample
    marker = tmp_path / "pwned"
    command = f"touch {marker}" if name != "eval" else f"open({str(marker)!r}, 'w')"
    state["payload"] = _Call(_Global(module, name), (command,))
    path = tmp_path / "malicious.pth"
    path.write_bytes(legacy_bytes(state, storages))

    with pytest.raises(EmbeddedBackboneError, match=rf"names {module}\.{name}") as caught:
        load_legacy_state_dict(path)

    assert str(path) in str(caught.value)
    assert not marker.exists()


def test_an_attack_in_the_header_pickles_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "malicious.pth"
    path.write_bytes(_dump(_Call(_Global("os", "system"), (f"touch {marker}",))))

    with pytest.raises(EmbeddedBackboneError, match=r"names os\.system"):
        load_legacy_state_dict(path)
    assert not marker.exists()


def test_a_standard_pickle_of_os_system_is_refused(tmp_path: Path) -> None:
    import os

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return os.system, ("true",)

    system = {"little_endian": True}
    header = b"".join(_dump(v) for v in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, system))
    path = tmp_path / "malicious.pth"
    path.write_bytes(header + pickle.dumps({"w": Exploit()}, protocol=2))

    with pytest.raises(EmbeddedBackboneError, match=r"system.*refused"):
        load_legacy_state_dict(path)


@pytest.mark.parametrize("keep", [0, 10, 60, 0.5, -4])
def test_a_truncated_file_names_the_path(
    tmp_path: Path, sample: tuple[dict[str, object], list[_Storage]], keep: float
) -> None:
    state, storages = sample
    content = legacy_bytes(state, storages)
    end = int(len(content) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "truncated.pth"
    path.write_bytes(content[:end])

    with pytest.raises(EmbeddedBackboneError, match="not a readable legacy PyTorch") as caught:
        load_legacy_state_dict(path)
    assert str(path) in str(caught.value)
    assert "reinstall" in str(caught.value).lower()


@pytest.mark.parametrize(
    ("offset", "size", "stride"),
    [
        (0, (65,), (1,)),  # more elements than the storage holds
        (60, (8,), (1,)),  # runs past the end
        (0, (2, 40), (40, 1)),  # the last row runs past the end
        (0, (10**9,), (0,)),  # stride 0: a tiny file asking for a huge copy
        (-1, (2,), (1,)),
        (0, (2,), (-1,)),
    ],
)
def test_tensors_outside_their_storage_are_refused(
    tmp_path: Path, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    storage = _Storage("1", "FloatStorage", np.zeros(64, dtype=np.float32))
    path = tmp_path / "out_of_bounds.pth"
    path.write_bytes(legacy_bytes({"w": _Tensor(storage, offset, size, stride)}, [storage]))

    with pytest.raises(EmbeddedBackboneError, match=re.escape(str(path))):
        load_legacy_state_dict(path)


def test_a_wrong_element_count_is_refused(
    tmp_path: Path, sample: tuple[dict[str, object], list[_Storage]]
) -> None:
    state, storages = sample
    path = tmp_path / "miscounted.pth"
    path.write_bytes(legacy_bytes(state, storages, element_counts={"1": 63}))

    with pytest.raises(EmbeddedBackboneError, match="holds 63 elements"):
        load_legacy_state_dict(path)


def test_a_wrong_magic_number_is_refused(
    tmp_path: Path, sample: tuple[dict[str, object], list[_Storage]]
) -> None:
    state, storages = sample
    path = tmp_path / "not_torch.pth"
    path.write_bytes(legacy_bytes(state, storages, magic=42))

    with pytest.raises(EmbeddedBackboneError, match="magic number is 42"):
        load_legacy_state_dict(path)


def test_the_zip_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "new_format.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(100))

    with pytest.raises(EmbeddedBackboneError, match="zip format"):
        load_legacy_state_dict(path)


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.pth"
    with pytest.raises(EmbeddedBackboneError, match=r"absent\.pth"):
        load_legacy_state_dict(path)
