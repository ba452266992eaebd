"""The tables of the documentation that are generated from the code: the keys (``app.actions``) in the README and
every flag of ``run_demo.sh`` (argparse) in ``docs/app.md``.

``python -m app.doc_tables`` rewrites them in place, between ``<!-- generated: NAME -->`` and
``<!-- /generated -->``; a test fails when a file and the code disagree.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

from .actions import markdown_table

ROOT = Path(__file__).resolve().parent.parent


def _flag_cell(action: argparse.Action) -> str:
    flag = action.option_strings[0]
    if action.nargs == 0:
        return f"`{flag}`"
    if action.choices:
        return f"`{flag} {'&#124;'.join(map(str, action.choices))}`"
    metavar = action.metavar or action.dest.upper()
    names = " ".join(metavar) if isinstance(metavar, tuple) else metavar
    if action.nargs == "+":
        names += " ..."
    return f"`{flag} {names.replace('|', '&#124;')}`"


def _default_cell(action: argparse.Action) -> str:
    if action.default in (None, False) or action.nargs == 0:
        return ""
    value = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else action.default
    return f"`{value}`"


def flags_table() -> str:
    """Every flag of the app's command line: the flag, its default and its help, as ``--help`` shows them."""
    from .cli import build_parser

    rows = ["| flag | default | what it does |", "| --- | --- | --- |"]
    for action in build_parser()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = " ".join((action.help or "").split()).replace("|", "&#124;")
        rows.append(f"| {_flag_cell(action)} | {_default_cell(action)} | {text} |")
    return "\n".join(rows)


#: file (relative to the repository) -> {table name: what generates it}
TABLES: dict[str, dict[str, Callable[[], str]]] = {
    "README.md": {"keys": markdown_table},
    "docs/app.md": {"flags": flags_table},
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(<!-- /generated -->)", re.DOTALL)


def generated(text: str, name: str, table: str) -> str:
    """``text`` with the table called ``name`` replaced by ``table``; ValueError when it has no such block."""
    pattern = _block(name)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- generated: {name} -->' ... '<!-- /generated -->' block")
    return pattern.sub(lambda match: match.group(1) + table + "\n" + match.group(3), text)


def stale_tables(root: Path = ROOT) -> list[str]:
    """The "file: table" pairs whose text differs from what the code generates."""
    stale = []
    for file, tables in TABLES.items():
        text = (root / file).read_text()
        for name, make in tables.items():
            if generated(text, name, make()) != text:
                stale.append(f"{file}: {name}")
    return stale


def main() -> int:
    for file, tables in TABLES.items():
        path = ROOT / file
        text = path.read_text()
        for name, make in tables.items():
            text = generated(text, name, make())
        path.write_text(text)
    print("tables up to date: " + ", ".join(f"{file} ({', '.join(tables)})" for file, tables in TABLES.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
