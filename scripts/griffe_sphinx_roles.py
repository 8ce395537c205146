"""A griffe extension that turns the Sphinx markup of hubtransfer's docstrings into Markdown.

Not run directly: ``mkdocs.yml`` loads it into mkdocstrings
(``extensions: [scripts/griffe_sphinx_roles.py]``) for the API reference.

hubtransfer's docstrings are Google-style with a little reStructuredText, readable in
``help()`` and in an editor: roles such as ``:class:`~hubtransfer.Backbone``` and
``:meth:`fit```, and ``::`` before an indented literal block. Markdown shows those
literally. Once the package is loaded, this extension rewrites every docstring:

* a role whose target is documented in the API reference (a name of
  ``hubtransfer.__all__``, a member of one, or of ``hubtransfer.testing``) becomes a
  cross-reference link, ``[`Backbone`][hubtransfer.Backbone]``; relative targets
  (``:meth:`fit``` in a class, ``:func:`tiny_spec``` in a module) are looked up from
  the docstring's own class and module first;
* any other role (a private module, a name outside the package) becomes plain code,
  so that no link points nowhere (``mkdocs build --strict`` would fail on it);
* a paragraph ending in ``::`` ends in ``:`` (its indented block is Markdown code);
* an ``Example:`` section becomes ``Examples:``, the spelling griffe parses as
  examples (so its ``>>>`` lines are shown as code, not as Markdown).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`([^`]+)`")
_EXPLICIT_TITLE = re.compile(r"^(.*?)\s*<([^<>]+)>$")
_LITERAL_MARKER = re.compile(r"(?m)(\S)[ \t]*::[ \t]*$|^[ \t]*::[ \t]*$")
_EXAMPLE_SECTION = re.compile(r"(?m)^Example:[ \t]*$")


class SphinxRoles(griffe.Extension):
    """Rewrites Sphinx roles and literal-block markers in a package's docstrings."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrites the docstrings of every object of ``pkg``, once it is loaded."""
        self._public = _public_paths(pkg)
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj.docstring.value, obj)

    def _rewrite(self, text: str, obj: griffe.Object) -> str:
        def replace(match: re.Match[str]) -> str:
            content = match.group(1).strip()
            explicit = _EXPLICIT_TITLE.match(content)
            title, target = explicit.groups() if explicit else (None, content)
            target = target.lstrip("!")
            short = target.startswith("~")
            target = target.lstrip("~.")
            shown = title or (target.rsplit(".", 1)[-1] if short else target)
            resolved = self._resolve(target, obj)
            return f"[`{shown}`][{resolved}]" if resolved else f"`{shown}`"

        text = _ROLE.sub(replace, text)
        text = _EXAMPLE_SECTION.sub("Examples:", text)
        return _LITERAL_MARKER.sub(lambda m: f"{m.group(1)}:" if m.group(1) else "", text)

    def _resolve(self, target: str, obj: griffe.Object) -> str | None:
        """The documented path ``target`` names, seen from ``obj``; None if undocumented."""
        scopes = []
        node: Any = obj
        while node is not None:
            if node.is_class or node.is_module:
                scopes.append(node.path)
            node = node.parent
        candidates = [f"{scope}.{target}" for scope in scopes] + [target]
        for candidate in candidates:
            if candidate in self._public:
                return self._public[candidate]
        return None


def _objects(root: griffe.Object) -> list[griffe.Object]:
    """Every object below ``root`` (itself included), aliases left out."""
    found = [root]
    for member in root.members.values():
        if not member.is_alias:
            found.extend(_objects(member))
    return found


def _public_paths(pkg: griffe.Module) -> dict[str, str]:
    """Maps every path under which a documented object is known to its documented path.

    ``hubtransfer._classifier.TransferClassifier.fit`` and
    ``hubtransfer.TransferClassifier.fit`` both map to the latter, the path its
    heading has in the API reference.
    """
    paths: dict[str, str] = {}

    def add(obj: Any, public: str, depth: int) -> None:
        try:
            target = obj.final_target if obj.is_alias else obj
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return  # re-exported from another package: not documented here
        paths.setdefault(public, public)
        # The first documented path wins: hubtransfer.testing re-imports BackboneSpec.
        paths.setdefault(target.path, public)
        if not depth:
            return
        if target.is_module:
            names = [str(name) for name in (target.exports or ())]
        elif target.is_class:
            # Members without a docstring get no heading, so no link may point at them.
            names = [
                name
                for name, member in target.members.items()
                if not name.startswith("_") and member.docstring is not None
            ]
        else:
            names = []
        for name in names:
            if name in target.members:
                add(target.members[name], f"{public}.{name}", depth - 1)

    for name in [str(name) for name in (pkg.exports or ())]:
        if name in pkg.members:
            add(pkg.members[name], f"{pkg.path}.{name}", 1)
    if "testing" in pkg.members:
        add(pkg.members["testing"], f"{pkg.path}.testing", 2)
    paths[pkg.path] = pkg.path
    return paths
