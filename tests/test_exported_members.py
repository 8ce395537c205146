"""The public API: ``hubtransfer.__all__`` matches what ``__init__.py`` re-exports."""

from __future__ import annotations

import ast
import builtins
import inspect
import re
import types
from pathlib import Path

import pytest

import hubtransfer
from hubtransfer import _exceptions

INIT = Path(hubtransfer.__file__)


def _reexported_names() -> list[str]:
    """Names bound by ``from .module import Name as Name`` lines of ``__init__.py``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.extend(alias.asname or alias.name for alias in node.names)
    return names


def _isort_key(name: str) -> tuple[int, str]:
    """Constants first, then classes, then everything else (ruff's isort-style order)."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_names_exist_once() -> None:
    assert len(hubtransfer.__all__) == len(set(hubtransfer.__all__))
    missing = [name for name in hubtransfer.__all__ if not hasattr(hubtransfer, name)]
    assert missing == []


def test_all_is_sorted_constants_then_classes_then_the_rest() -> None:
    assert hubtransfer.__all__ == sorted(hubtransfer.__all__, key=_isort_key)


def test_all_lists_exactly_what_init_reexports() -> None:
    reexported = _reexported_names()
    assert len(reexported) == len(set(reexported))
    assert sorted(reexported) == sorted(hubtransfer.__all__)


def test_every_public_object_of_hubtransfer_is_exported() -> None:
    # Submodules (hubtransfer.testing once imported) are attributes too, but not API members.
    unexported = [
        name
        for name, value in vars(hubtransfer).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "").startswith("hubtransfer")
        and name not in hubtransfer.__all__
    ]
    assert unexported == []


@pytest.mark.parametrize("name", hubtransfer.__all__)
def test_every_exported_class_and_function_has_a_docstring(name: str) -> None:
    member = getattr(hubtransfer, name)
    if not (inspect.isclass(member) or inspect.isroutine(member)):
        return
    doc = member.__doc__
    assert doc and doc.strip(), f"hubtransfer.{name} has no docstring"
    # A dataclass without a docstring gets its signature as __doc__.
    assert not doc.startswith(f"{member.__name__}("), f"hubtransfer.{name} has no docstring"


@pytest.mark.parametrize("name", _exceptions.__all__)
def test_every_error_derives_from_the_root_and_is_exported(name: str) -> None:
    error = getattr(_exceptions, name)
    assert inspect.isclass(error)
    assert issubclass(error, hubtransfer.HubTransferError)
    assert issubclass(error, Exception)
    assert name in hubtransfer.__all__
    assert getattr(hubtransfer, name) is error


def test_the_error_tree_in_the_exceptions_docstring_is_true() -> None:
    doc = _exceptions.__doc__ or ""
    entries = dict(re.findall(r"(\w+Error)(?: \(([\w, ]+)\))?\n", doc))
    assert set(entries) == set(_exceptions.__all__)
    for name, bases in entries.items():
        error = getattr(_exceptions, name)
        for base in filter(None, (part.strip() for part in bases.split(","))):
            assert issubclass(error, getattr(builtins, base)), (name, base)
