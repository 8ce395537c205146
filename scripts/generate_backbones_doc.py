"""Writes docs/backbones.md from the built-in backbone catalog.

Usage::

    python scripts/generate_backbones_doc.py          # rewrite the page
    python scripts/generate_backbones_doc.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backbones.md"

# The page must describe this checkout's catalog, not an installed copy.
sys.path.insert(0, str(ROOT / "src"))

from hubtransfer._catalog import BUILTIN_BACKBONES  # noqa: E402
from hubtransfer._catalog_doc import render_backbones_markdown  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Writes (or, with ``--check``, verifies) the generated page.

    Args:
        argv: Command-line arguments, without the program name.

    Returns:
        The exit status: 0 when the page is (now) up to date, 1 when
        ``--check`` found it stale.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only check that the page is up to date"
    )
    args = parser.parse_args(argv)
    page = render_backbones_markdown(BUILTIN_BACKBONES)
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else None
    if args.check:
        if current != page:
            print(f"{DOC} is stale; run python scripts/generate_backbones_doc.py", file=sys.stderr)
            return 1
        return 0
    if current != page:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(page, encoding="utf-8")
        print(f"wrote {DOC} ({len(BUILTIN_BACKBONES)} backbones)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
