"""The code style the README promises, checked: ruff with the settings in pyproject.toml (line length, naming,
bugbear, blind excepts, import order), and the app's size limits."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    arguments = function.args
    named = [arg.arg for arg in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    starred = [star.arg for star in (arguments.vararg, arguments.kwarg) if star is not None]
    return [name for name in named + starred if name not in ("self", "cls")]


def test_app_functions_and_classes_stay_small() -> None:
    """The app's style limits: no function takes more than 8 parameters, no class is over 300 lines."""
    too_big = []
    for path in sorted((ROOT / "app").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 300:
                too_big.append(f"{path.name}: class {node.name}, {node.end_lineno - node.lineno + 1} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(_parameters(node)) > 8:
                too_big.append(f"{path.name}: {node.name}, {len(_parameters(node))} parameters")
    assert not too_big, too_big
