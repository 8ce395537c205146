"""The backbone registry: built-in specs, user registrations and plugins.

Third parties add backbones through the entry-point group
``hubtransfer.backbones``. Each entry point names a callable that returns an
iterable of :class:`~hubtransfer.BackboneSpec` (or the iterable itself).
Plugins are loaded lazily, on the first lookup, never at import time::

    # pyproject.toml of a plugin package
    [project.entry-points."hubtransfer.backbones"]
    my_models = "my_package.backbones:specs"
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Final

from ._exceptions import (
    BackbonePluginError,
    DuplicateBackboneError,
    InvalidParameterError,
    UnknownBackboneError,
)
from ._spec import BackboneSpec, OutputKind

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackboneRegistry",
    "default_registry",
    "get_backbone_spec",
    "list_backbones",
    "register_backbone",
]

ENTRY_POINT_GROUP: Final = "hubtransfer.backbones"


def _describe_entry_point(entry_point: metadata.EntryPoint) -> str:
    distribution = getattr(entry_point, "dist", None)
    origin = f" from the distribution {distribution.name!r}" if distribution is not None else ""
    return f"entry point {entry_point.name!r} ({entry_point.value}){origin}"


class BackboneRegistry:
    """A name → :class:`~hubtransfer.BackboneSpec` table with plugin loading.

    Most code uses the module-level functions (:func:`register_backbone`,
    :func:`get_backbone_spec`, :func:`list_backbones`) that act on the
    default registry; a separate registry is useful for tests and sandboxes.

    Args:
        specs: Specs to start with (for the default registry, the built-ins).
        entry_point_group: Entry-point group to load plugins from, or ``None``
            to load none.

    Example:
        >>> import hubtransfer
        >>> registry = hubtransfer.BackboneRegistry(entry_point_group=None)
        >>> registry.register(hubtransfer.BackboneSpec(
        ...     name="tiny_fv", handle="/models/tiny", input_size=(32, 32),
        ...     output_kind="feature_vector", feature_dim=8, tags=frozenset({"tiny"})))
        >>> [spec.name for spec in registry.list(tag="tiny")]
        ['tiny_fv']
    """

    def __init__(
        self,
        specs: Iterable[BackboneSpec] = (),
        *,
        entry_point_group: str | None = ENTRY_POINT_GROUP,
    ) -> None:
        self._specs: dict[str, BackboneSpec] = {}
        self._entry_point_group = entry_point_group
        self._plugins_loaded = entry_point_group is None
        self._lock = threading.RLock()
        for spec in specs:
            self._add(spec, replace=False, origin="the initial specs")

    def _add(self, spec: BackboneSpec, *, replace: bool, origin: str) -> None:
        if not isinstance(spec, BackboneSpec):
            raise InvalidParameterError(
                f"Only BackboneSpec objects can be registered; {origin} gave {spec!r}."
            )
        if spec.name in self._specs and not replace and self._specs[spec.name] != spec:
            raise DuplicateBackboneError(
                f"A backbone named {spec.name!r} is already registered "
                f"(handle {self._specs[spec.name].handle!r}); {origin} registers it again "
                f"with handle {spec.handle!r}. Pass replace=True to override it, or choose "
                "another name (dataclasses.replace(spec, name=...))."
            )
        self._specs[spec.name] = spec

    def _ensure_plugins(self) -> None:
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            # Mark first: a plugin that looks up a backbone while loading must not recurse.
            self._plugins_loaded = True
            assert self._entry_point_group is not None
            for entry_point in metadata.entry_points(group=self._entry_point_group):
                self._load_plugin(entry_point)

    def _load_plugin(self, entry_point: metadata.EntryPoint) -> None:
        described = _describe_entry_point(entry_point)
        try:
            loaded = entry_point.load()
            specs = loaded() if callable(loaded) else loaded
            specs = list(specs)
        except Exception as error:
            raise BackbonePluginError(
                f"The hubtransfer backbone plugin {described} failed to load: {error!r}. "
                "Fix or uninstall that package."
            ) from error
        for spec in specs:
            if not isinstance(spec, BackboneSpec):
                raise BackbonePluginError(
                    f"The hubtransfer backbone plugin {described} returned {spec!r}, "
                    "not a BackboneSpec. Fix or uninstall that package."
                )
            try:
                self._add(spec, replace=False, origin=f"the plugin {described}")
            except DuplicateBackboneError as error:
                raise BackbonePluginError(str(error)) from error

    def register(self, spec: BackboneSpec, *, replace: bool = False) -> None:
        """Adds ``spec`` under ``spec.name``.

        Args:
            spec: The backbone to add.
            replace: Whether to override an existing spec of the same name.

        Raises:
            DuplicateBackboneError: If the name is taken by a different spec
                and ``replace`` is false.
        """
        self._ensure_plugins()
        with self._lock:
            self._add(spec, replace=replace, origin="register_backbone()")

    def unregister(self, name: str) -> BackboneSpec:
        """Removes and returns the spec called ``name``.

        Raises:
            UnknownBackboneError: If no backbone has that name.
        """
        with self._lock:
            spec = self.get(name)
            del self._specs[spec.name]
            return spec

    def get(self, name: str) -> BackboneSpec:
        """Returns the spec called ``name``.

        Raises:
            UnknownBackboneError: If no backbone has that name; the message
                suggests the closest names.
        """
        self._ensure_plugins()
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            pass
        close = difflib.get_close_matches(str(name), list(self._specs), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownBackboneError(
            f"No backbone named {name!r} is registered.{hint} "
            "Run `hubtransfer backbones` to list them, or pass a handle "
            "(a TF-Hub/Kaggle URL, a local SavedModel folder or an http(s) .tar.gz)."
        )

    def __contains__(self, name: object) -> bool:
        self._ensure_plugins()
        return name in self._specs

    def list(
        self,
        *,
        tag: str | None = None,
        output_kind: OutputKind | None = None,
        where: Callable[[BackboneSpec], bool] | None = None,
    ) -> tuple[BackboneSpec, ...]:
        """Returns the registered specs, sorted by name, optionally filtered.

        Args:
            tag: Keep only specs carrying this tag.
            output_kind: Keep only ``"feature_vector"`` or ``"classification"``.
            where: Keep only specs for which this predicate is true.
        """
        self._ensure_plugins()
        specs = sorted(self._specs.values(), key=lambda spec: spec.name)
        return tuple(
            spec
            for spec in specs
            if (tag is None or tag in spec.tags)
            and (output_kind is None or spec.output_kind == output_kind)
            and (where is None or where(spec))
        )


_default: BackboneRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> BackboneRegistry:
    """Returns the process-wide registry, built on first use from the catalog."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from ._catalog import BUILTIN_BACKBONES

                _default = BackboneRegistry(BUILTIN_BACKBONES)
    return _default


def register_backbone(spec: BackboneSpec, *, replace: bool = False) -> None:
    """Registers a backbone in the default registry.

    Args:
        spec: The backbone to add, under ``spec.name``.
        replace: Whether to override an existing spec of the same name.

    Raises:
        DuplicateBackboneError: If the name is taken and ``replace`` is false.

    Example:
        >>> import hubtransfer
        >>> spec = hubtransfer.BackboneSpec(
        ...     name="my_local_fv", handle="/models/my_fv", input_size=(224, 224),
        ...     output_kind="feature_vector", feature_dim=1280)
        >>> hubtransfer.register_backbone(spec)
        >>> hubtransfer.get_backbone_spec("my_local_fv").handle
        '/models/my_fv'
    """
    default_registry().register(spec, replace=replace)


def get_backbone_spec(name: str) -> BackboneSpec:
    """Looks a backbone up by name in the default registry.

    Raises:
        UnknownBackboneError: If the name is unknown; the message suggests
            the closest registered names.

    Example:
        >>> import hubtransfer
        >>> hubtransfer.get_backbone_spec("efficientnet_lite0_embedded_fv").feature_dim
        1280
    """
    return default_registry().get(name)


def list_backbones(
    *, tag: str | None = None, output_kind: OutputKind | None = None
) -> tuple[BackboneSpec, ...]:
    """Lists the default registry's backbones, sorted by name.

    Args:
        tag: Keep only specs carrying this tag (e.g. ``"offline"``).
        output_kind: Keep only ``"feature_vector"`` or ``"classification"``.

    Example:
        >>> import hubtransfer
        >>> [spec.name for spec in hubtransfer.list_backbones(tag="embedded")]
        ['efficientnet_lite0_embedded_classifier', 'efficientnet_lite0_embedded_fv']
    """
    return default_registry().list(tag=tag, output_kind=output_kind)
