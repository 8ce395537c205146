"""Writes docs/backbones.md from the built-in backbone catalog.

Usage::

    python scripts/generate_backbones_doc.py          # rewrite the page
    python scripts/generate_backbones_doc.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backbones.md"

# generated_page.py beside this file, also when the tests load the script by path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The page must describe this checkout's catalog, not an installed copy.
sys.path.insert(0, str(ROOT / "src"))

from generated_page import write_or_check  # noqa: E402

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
    return write_or_check(
        DOC,
        lambda: render_backbones_markdown(BUILTIN_BACKBONES),
        script="generate_backbones_doc.py",
        description=(__doc__ or "").splitlines()[0],
        argv=argv,
        note=f" ({len(BUILTIN_BACKBONES)} backbones)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
