"""What every docs generator here does with its page: write it, or ``--check`` it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def write_or_check(
    doc: Path,
    render: Callable[[], str],
    *,
    script: str,
    description: str,
    argv: Sequence[str] | None = None,
    note: str = "",
) -> int:
    """Writes ``render()`` to ``doc`` if it differs; with ``--check``, only compares.

    Args:
        doc: The generated page.
        render: Builds the page's text.
        script: The generator's file name, for the "stale" message.
        description: The generator's one-line description, for ``--help``.
        argv: Command-line arguments, without the program name.
        note: Added to the "wrote" message (e.g. a count).

    Returns:
        The exit status: 0 when the page is (now) up to date, 1 when
        ``--check`` found it stale.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--check", action="store_true", help="only check that the page is up to date"
    )
    args = parser.parse_args(argv)
    page = render()
    current = doc.read_text(encoding="utf-8") if doc.exists() else None
    if args.check:
        if current != page:
            print(f"{doc} is stale; run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    if current != page:
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(page, encoding="utf-8")
        print(f"wrote {doc}{note}")
    return 0
