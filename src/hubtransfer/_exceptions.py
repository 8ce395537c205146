"""The errors hubtransfer raises.

Every error derives from :class:`HubTransferError`, so one ``except`` clause
catches them all. Specific errors also derive from the builtin a caller would
naturally catch::

    HubTransferError (Exception)
    ├── InvalidParameterError (ValueError)
    ├── UnknownBackboneError (LookupError)
    ├── DuplicateBackboneError (ValueError)
    ├── BackbonePluginError (ImportError)
    ├── HandleError (OSError)
    │   ├── HandleUnreachableError
    │   ├── BrokenCacheEntryError
    │   └── UnsafeArchiveError
    ├── EmbeddedBackboneError (RuntimeError)
    ├── ExportError (RuntimeError)
    ├── ImageDecodeError (ValueError)
    ├── LabelMapError (ValueError)
    ├── DatasetError (ValueError)
    ├── ModelFormatError (ValueError)
    ├── NotFittedError (ValueError, AttributeError)
    ├── ConcurrentFitError (RuntimeError)
    ├── ShardTimeoutError (TimeoutError)
    ├── TFLiteUnavailableError (RuntimeError)
    └── OpenVINOUnavailableError (RuntimeError)

Every message names the offending value (a file path, a handle, a parameter)
and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BackbonePluginError",
    "BrokenCacheEntryError",
    "ConcurrentFitError",
    "DatasetError",
    "DuplicateBackboneError",
    "EmbeddedBackboneError",
    "ExportError",
    "HandleError",
    "HandleUnreachableError",
    "HubTransferError",
    "ImageDecodeError",
    "InvalidParameterError",
    "LabelMapError",
    "ModelFormatError",
    "NotFittedError",
    "OpenVINOUnavailableError",
    "ShardTimeoutError",
    "TFLiteUnavailableError",
    "UnknownBackboneError",
    "UnsafeArchiveError",
]


class HubTransferError(Exception):
    """Root of every error raised by hubtransfer.

    Example:
        >>> import hubtransfer
        >>> try:
        ...     hubtransfer.get_backbone_spec("no-such-backbone")
        ... except hubtransfer.HubTransferError as error:
        ...     print(type(error).__name__)
        UnknownBackboneError
    """


class InvalidParameterError(HubTransferError, ValueError):
    """A parameter has a value outside what the API accepts."""


class UnknownBackboneError(HubTransferError, LookupError):
    """A backbone name is not in the registry."""

    def __str__(self) -> str:
        # LookupError's str() would quote the message like a dict key.
        return str(self.args[0]) if self.args else ""


class DuplicateBackboneError(HubTransferError, ValueError):
    """A backbone name is registered twice without ``replace=True``."""


class BackbonePluginError(HubTransferError, ImportError):
    """A third-party ``hubtransfer.backbones`` entry point failed to load."""


class HandleError(HubTransferError, OSError):
    """A backbone handle cannot be resolved to a loadable SavedModel."""


class HandleUnreachableError(HandleError):
    """A remote handle cannot be reached (offline, host down, 404, time-out)."""


class BrokenCacheEntryError(HandleError):
    """A cache entry exists but does not hold a complete SavedModel."""


class UnsafeArchiveError(HandleError):
    """An archive holds members that would escape or subvert the target folder."""


class EmbeddedBackboneError(HubTransferError, RuntimeError):
    """The embedded backbone's weights are missing, altered or unconvertible."""


class ExportError(HubTransferError, RuntimeError):
    """A fitted classifier cannot be written in the requested export format."""


class ImageDecodeError(HubTransferError, ValueError):
    """A file or buffer is not a decodable image."""


class LabelMapError(HubTransferError, ValueError):
    """Labels are malformed or do not match the model's classes."""


class DatasetError(HubTransferError, ValueError):
    """A data set (folder, arrays, lists) cannot be used for training or evaluation."""


class ModelFormatError(HubTransferError, ValueError):
    """A saved model directory is damaged, tampered with or of an unknown format."""


class NotFittedError(HubTransferError, ValueError, AttributeError):
    """An estimator method that needs a fitted model was called before ``fit``."""


class ConcurrentFitError(HubTransferError, RuntimeError):
    """``fit`` was called on an estimator that another thread is fitting right now."""


class ShardTimeoutError(HubTransferError, TimeoutError):
    """Other workers' feature shards stopped reaching the shared feature store."""


class TFLiteUnavailableError(HubTransferError, RuntimeError):
    """A backbone cannot run on TensorFlow Lite, or its TFLite copy is not exact."""


class OpenVINOUnavailableError(HubTransferError, RuntimeError):
    """OpenVINO is not installed, cannot load a backbone's TFLite copy, or is not exact."""
