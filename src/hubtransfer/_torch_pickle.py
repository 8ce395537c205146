"""Reads PyTorch's legacy (pre-1.6, non-zip) ``torch.save`` files without torch.

The embedded backbone's weights ship as such a file. The format is a chain of
pickles followed by raw tensor data:

1. the magic number, the protocol version (1001) and a dict of system
   information (byte order, C type sizes);
2. the state dict, pickled with *persistent ids*
   ``('storage', <storage type>, <key>, <device>, <element count>, <view>)``
   standing for storages that are written later, and with tensors rebuilt by
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``;
3. the list of storage keys, in the order their data follows;
4. for each key: the element count as a little-endian int64, then the raw
   little-endian elements.

Pickle runs whatever callables a file names, so every pickle here goes through
:class:`_RestrictedUnpickler`, which resolves only the handful of names the
format needs and refuses all others. Tensors are materialised only after every
storage has been read, and their offsets and strides are checked against the
storage's length first, because :func:`numpy.lib.stride_tricks.as_strided`
would otherwise read memory outside it.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt

from ._exceptions import EmbeddedBackboneError

__all__ = [
    "LEGACY_MAGIC_NUMBER",
    "LEGACY_PROTOCOL_VERSION",
    "load_legacy_state_dict",
    "parse_legacy_state_dict",
]

LEGACY_MAGIC_NUMBER: Final = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION: Final = 1001

# Little-endian element types of the storage classes a legacy file may name.
# bfloat16 is absent because numpy has no such type.
_STORAGE_DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True, slots=True)
class _StorageType:
    """What ``torch.FloatStorage`` and friends resolve to: a name and a dtype."""

    name: str
    dtype: np.dtype[Any]


@dataclass(frozen=True, slots=True)
class _StorageReference:
    """A storage named in the state-dict pickle, whose bytes come later."""

    key: str
    dtype: np.dtype[Any]
    element_count: int


@dataclass(frozen=True, slots=True)
class _PendingTensor:
    """A tensor waiting for its storage's bytes, which follow the pickle."""

    storage: _StorageReference
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _check_layout(tensor: _PendingTensor, name: object) -> None:
    """Raises ValueError unless the tensor lies wholly inside its storage.

    Runs just before :func:`numpy.lib.stride_tricks.as_strided`, which trusts
    its arguments and would otherwise read outside the storage's memory.
    """
    offset, size, stride = tensor.offset, tensor.size, tensor.stride
    if not (
        isinstance(offset, int)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(v, int) for v in (*size, *stride))
    ):
        raise ValueError(
            f"tensor {name!r} has a malformed offset {offset!r}, size {size!r} or stride {stride!r}"
        )
    if offset < 0 or any(v < 0 for v in (*size, *stride)):
        raise ValueError(f"tensor {name!r} has a negative offset, size or stride")
    storage_size = tensor.storage.element_count
    element_count = math.prod(size)
    # A state dict holds no expanded (stride 0) tensors; refusing tensors larger
    # than their storage also stops a small file from asking for huge copies.
    if element_count > storage_size:
        raise ValueError(
            f"tensor {name!r} has {element_count} elements but its storage only {storage_size}"
        )
    if element_count:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= storage_size:
            raise ValueError(
                f"tensor {name!r} reaches element {last} of storage "
                f"{tensor.storage.key!r}, which holds {storage_size}"
            )


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _PendingTensor:
    """Stands in for ``torch._utils._rebuild_tensor_v2``; data comes later."""
    del requires_grad, backward_hooks, metadata  # Irrelevant to the values.
    if not isinstance(storage, _StorageReference):
        raise pickle.UnpicklingError(f"a tensor's storage is {storage!r}, not a storage")
    tensor = _PendingTensor(storage, storage_offset, size, stride)  # type: ignore[arg-type]
    try:
        _check_layout(tensor, "being unpickled")
    except ValueError as error:
        raise pickle.UnpicklingError(str(error)) from None
    return tensor


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names a legacy state dict needs.

    Args:
        file: The open file, positioned at the next pickle.
        path: The file's path, for error messages.
        allow_tensors: Whether tensors, storages and ``OrderedDict`` may be
            named (only in the state-dict pickle); the other pickles of the
            format hold plain ints, strings, lists and dicts.
    """

    def __init__(self, file: IO[bytes], *, path: Path, allow_tensors: bool) -> None:
        super().__init__(file)
        self._path = path
        self._allow_tensors = allow_tensors
        self.storages: dict[str, _StorageReference] = {}

    def find_class(self, module: str, name: str) -> Any:
        if self._allow_tensors:
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor_v2
            if module == "torch" and name in _STORAGE_DTYPES:
                return _StorageType(name, _STORAGE_DTYPES[name])
        raise EmbeddedBackboneError(
            f"The weights file {str(self._path)!r} names {module}.{name}, which a PyTorch "
            "state dict has no use for, so it was refused: the file may be malicious or "
            "is not a legacy state dict. Reinstall the package that provides it, or use "
            "a file you trust."
        )

    def persistent_load(self, pid: Any) -> Any:
        if not self._allow_tensors:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if (
            not isinstance(pid, tuple)
            or len(pid) != 6
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not isinstance(pid[4], int)
            or pid[4] < 0
        ):
            raise pickle.UnpicklingError(f"malformed storage id {pid!r}")
        storage_type, key, element_count, view = pid[1], pid[2], pid[4], pid[5]
        if view is not None:
            # Storage views were written only by PyTorch releases before 0.4.
            raise pickle.UnpicklingError(f"storage {key!r} is a view, which is unsupported")
        known = self.storages.get(key)
        reference = _StorageReference(key, storage_type.dtype, element_count)
        if known is not None and known != reference:
            raise pickle.UnpicklingError(f"storage {key!r} is declared twice, differently")
        self.storages[key] = reference
        return reference


def _malformed(path: Path, reason: str) -> EmbeddedBackboneError:
    return EmbeddedBackboneError(
        f"The weights file {str(path)!r} is not a readable legacy PyTorch state dict: "
        f"{reason}. The file is truncated, damaged or of another format; reinstall the "
        "package that provides it."
    )


def _materialise(
    tensor: _PendingTensor, data: npt.NDArray[Any], name: str
) -> npt.NDArray[np.float32]:
    """Returns a float32, C-contiguous copy of the tensor's elements in ``data``."""
    # Checked again: pickle's BUILD opcode can alter an object after its creation.
    _check_layout(tensor, name)
    if data.size != tensor.storage.element_count:
        raise ValueError(f"storage {tensor.storage.key!r} does not hold its declared size")
    view = np.lib.stride_tricks.as_strided(
        data[tensor.offset :],
        shape=tensor.size,
        strides=tuple(s * data.itemsize for s in tensor.stride),
        writeable=False,
    )
    # Most kernels in the embedded file are stored transposed; copying makes them
    # C-contiguous in the layout their shape describes.
    return np.array(view, dtype=np.float32, order="C", copy=True)


def _read_storages(
    file: IO[bytes], keys: object, storages: dict[str, _StorageReference]
) -> dict[str, npt.NDArray[Any]]:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"the storage key list is {type(keys).__name__}, not a list of str")
    if set(keys) != set(storages) or len(keys) != len(storages):
        raise ValueError("the storage key list does not match the storages the state dict uses")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for key in keys:
        reference = storages[key]
        header = file.read(8)
        if len(header) != 8:
            raise ValueError(f"the data of storage {key!r} is missing")
        count = int.from_bytes(header, "little", signed=True)
        if count != reference.element_count:
            raise ValueError(
                f"storage {key!r} holds {count} elements, but the state dict says "
                f"{reference.element_count}"
            )
        byte_count = count * reference.dtype.itemsize
        payload = file.read(byte_count)
        if len(payload) != byte_count:
            raise ValueError(f"storage {key!r} has {len(payload)} of its {byte_count} bytes")
        arrays[key] = np.frombuffer(payload, dtype=reference.dtype)
    return arrays


def load_legacy_state_dict(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """Reads the floating-point tensors of a legacy ``torch.save`` state dict.

    Only the names a state dict needs are resolved while unpickling; anything
    else (``os.system``, ``builtins.eval``, ...) is refused before it runs.
    Integer buffers such as BatchNorm's ``num_batches_tracked`` are training
    bookkeeping that no forward pass reads, so they are left out.

    Args:
        path: The ``.pth`` file, in PyTorch's legacy (non-zip) format.

    Returns:
        Tensor name to a float32, C-contiguous array in PyTorch layout (a
        convolution kernel is ``(out, in, height, width)``), in file order.

    Raises:
        EmbeddedBackboneError: If the file cannot be read, is truncated or
            malformed, is of another format (such as PyTorch's zip format), or
            names a callable outside what a state dict needs.

    Example:
        >>> from hubtransfer._embedded import weights_path
        >>> state = load_legacy_state_dict(weights_path())
        >>> state["_fc.weight"].shape
        (1000, 1280)
    """
    try:
        content = path.read_bytes()
    except OSError as error:
        raise EmbeddedBackboneError(
            f"Cannot read the weights file {str(path)!r}: {error}. Reinstall the package "
            "that provides it."
        ) from error
    return parse_legacy_state_dict(content, path=path)


def parse_legacy_state_dict(content: bytes, *, path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """Like :func:`load_legacy_state_dict`, for a file's bytes already read.

    Reading once lets a caller check the bytes' hash and parse exactly what
    it checked.

    Args:
        content: The file's bytes.
        path: Where they came from, for error messages.

    Returns:
        Tensor name to a float32, C-contiguous array in PyTorch layout.

    Raises:
        EmbeddedBackboneError: As :func:`load_legacy_state_dict`.
    """
    if content.startswith(b"PK\x03\x04"):
        raise _malformed(path, "it is in PyTorch's newer zip format, not the legacy one")
    file = io.BytesIO(content)
    try:
        magic = _RestrictedUnpickler(file, path=path, allow_tensors=False).load()
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(f"its magic number is {magic!r}")
        version = _RestrictedUnpickler(file, path=path, allow_tensors=False).load()
        if version != LEGACY_PROTOCOL_VERSION:
            raise ValueError(f"its protocol version is {version!r}, not 1001")
        system = _RestrictedUnpickler(file, path=path, allow_tensors=False).load()
        if not isinstance(system, dict) or system.get("little_endian") is not True:
            raise ValueError("it was written on a big-endian machine, or lacks system info")
        unpickler = _RestrictedUnpickler(file, path=path, allow_tensors=True)
        state = unpickler.load()
        if not isinstance(state, dict):
            raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
        keys = _RestrictedUnpickler(file, path=path, allow_tensors=False).load()
        data = _read_storages(file, keys, unpickler.storages)
        tensors: dict[str, npt.NDArray[np.float32]] = {}
        for name, value in state.items():
            if not isinstance(name, str) or not isinstance(value, _PendingTensor):
                raise ValueError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
            if value.storage.dtype.kind != "f":
                continue
            tensors[name] = _materialise(value, data[value.storage.key], name)
    except EmbeddedBackboneError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        OverflowError,
        MemoryError,
        RecursionError,
    ) as error:
        raise _malformed(path, str(error) or type(error).__name__) from error
    return tensors
