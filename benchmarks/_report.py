"""Write a benchmark's figures into its own section of BENCHMARKS.md.

Each script owns the section between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; other sections are left as they are.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine() -> str:
    """One line describing where the figures were measured."""
    return (f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
            f"{datetime.now(UTC):%Y-%m-%d}")


def write_section(name: str, title: str, body: str, command: str | None = None) -> None:
    """Replace (or append) section ``name`` of BENCHMARKS.md with ``body``."""
    command = command or "python " + " ".join([os.path.relpath(sys.argv[0], BENCHMARKS.parent), *sys.argv[1:]])
    block = (f"<!-- bench:{name} -->\n## {title}\n\nMeasured with `{command}` on {machine()}.\n\n"
             f"{body.strip()}\n<!-- /bench:{name} -->")
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    tmp = BENCHMARKS.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(BENCHMARKS)


def table(columns: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
