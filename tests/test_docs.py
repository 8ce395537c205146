"""The documentation site: generated pages are current, the API reference is complete, and
``mkdocs build --strict`` passes (it needs the ``docs`` extra; skipped without it)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hubtransfer

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCRIPTS = ROOT / "scripts"
# Pages the site links that other parts of the project write.
WRITTEN_ELSEWHERE = {
    "benchmarks.md": "benchmarks/report.py writes it",
    "reliability.md": "it comes with the calibration work",
}
# `::: hubtransfer.Name` renders a public object; `::: hubtransfer._module` is not one.
DIRECTIVE = re.compile(r"^::: hubtransfer\.([A-Za-z]\w*)\s*$", re.MULTILINE)
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "griffe")


def load_script(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def missing_docs_packages() -> list[str]:
    missing = []
    for name in DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


needs_docs_extra = pytest.mark.skipif(
    bool(missing_docs_packages()),
    reason=f"needs the docs extra (pip install -e '.[docs]'); missing {missing_docs_packages()}",
)


def test_cli_reference_is_current() -> None:
    generator = load_script("generate_cli_doc")
    from hubtransfer._cli import build_parser

    page = generator.render_cli_markdown(build_parser())  # type: ignore[attr-defined]
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == page, (
        "docs/cli.md is stale; run python scripts/generate_cli_doc.py"
    )


def test_cli_reference_lists_every_command_and_option() -> None:
    from hubtransfer._cli import build_parser

    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name, command in commands.choices.items():  # type: ignore[union-attr]
        assert f"## hubtransfer {name} " in page
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in page, (name, option)


def test_every_public_name_is_in_the_api_reference() -> None:
    documented: dict[str, str] = {}
    for page in sorted((DOCS / "api").glob("*.md")):
        for name in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            assert name not in documented, f"{name} is on {documented.get(name)} and {page.name}"
            documented[name] = page.name
    public = set(hubtransfer.__all__) - {"__version__"}
    assert sorted(public - set(documented)) == [], "add these to a page in docs/api/"
    assert sorted(set(documented) - public - {"testing"}) == [], "not in hubtransfer.__all__"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+- (?:[^:\n]+: )?([\w/.-]+\.md)\s*$", config, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(pages - listed) == []
    assert sorted(listed - pages - set(WRITTEN_ELSEWHERE)) == []


@needs_docs_extra
def test_docstring_roles_become_links_or_code() -> None:
    import griffe

    extension = load_script("griffe_sphinx_roles").SphinxRoles()  # type: ignore[attr-defined]
    package = griffe.load(
        "hubtransfer",
        search_paths=[str(ROOT / "src")],
        extensions=griffe.load_extensions(extension),
        docstring_parser="google",
    )
    classifier = package["TransferClassifier"].docstring.value
    assert "[`fit`][hubtransfer.TransferClassifier.fit]" in classifier
    assert "[`Augmentation`][hubtransfer.Augmentation]" in classifier
    testing = package["testing"]["check_backbone_spec"].docstring.value
    assert ":func:" not in testing and ":class:" not in testing
    # A role pointing outside the documented API becomes code, not a dead link.
    features = package["extract_features"].docstring.value
    assert "`hubtransfer._runtime.select_runtime`" in features
    assert "][hubtransfer._runtime" not in features


@needs_docs_extra
@pytest.mark.slow
def test_site_builds_with_strict_warnings(tmp_path: Path) -> None:
    missing = [f"docs/{page} ({why})" for page, why in WRITTEN_ELSEWHERE.items()
               if not (DOCS / page).is_file()]  # fmt: skip
    if missing:
        pytest.skip(f"the site links pages not written yet: {', '.join(missing)}")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (site / "index.html").is_file()
    assert (site / "api" / "classifiers" / "index.html").is_file()
    assert (site / "images" / "confusion-matrix.png").is_file()
