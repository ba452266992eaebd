"""The README's Python snippets run as written, in a folder holding the files they name (official-layout
checkpoints with random weights, two images)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.config import get_preset
from model.loftr import LoFTR

ROOT = Path(__file__).resolve().parent.parent


DOCUMENTS = ("README.md", "docs/app.md", "docs/model.md", "docs/training.md", "docs/testing.md")


def _snippets() -> list[str]:
    """Every Python snippet of the README and the documents it links to."""
    text = "\n".join((ROOT / name).read_text() for name in DOCUMENTS)
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def _official_checkpoint(path: Path, preset: str) -> None:
    """A Lightning-style file as the official code releases them: {'state_dict': {'matcher.' + key: ...}}."""
    state = LoFTR(get_preset(preset)).state_dict()
    torch.save({"state_dict": {f"matcher.{key}": value for key, value in state.items()}}, path)


def test_the_readme_has_python_snippets() -> None:
    assert len(_snippets()) >= 2


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_a_readme_snippet_runs(index: int, tmp_path: Path, photo_pair: tuple[np.ndarray, np.ndarray],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    snippet = _snippets()[index]
    (tmp_path / "weights").mkdir()
    for name in re.findall(r"weights/(\w+)\.ckpt", snippet):
        _official_checkpoint(tmp_path / "weights" / f"{name}.ckpt", name)
    for name, image in zip(("anchor.png", "frame.png"), photo_pair, strict=True):
        cv2.imwrite(str(tmp_path / name), image)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace: dict[str, object] = {}
    exec(compile(snippet, f"documentation python snippet {index + 1}", "exec"), namespace)
    # What the snippets say they give: sorted numpy matches, or the original dict API's tensors.
    result = namespace.get("result")
    if result is not None:
        assert len(result.keypoints0) == len(result.keypoints1) == len(result.confidence)  # type: ignore[attr-defined]
        assert np.all(np.diff(result.confidence) <= 0)  # type: ignore[attr-defined]
    if "mkpts0" in namespace:
        assert namespace["mkpts0"].shape[0] == namespace["mconf"].shape[0]  # type: ignore[attr-defined]
    assert result is not None or "mkpts0" in namespace


def _demo_commands(text: str) -> list[list[str]]:
    """The ``./run_demo.sh ...`` command lines of a text, as argument lists: without a ``#`` comment (README) or
    what follows two spaces (--help's examples)."""
    import shlex

    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("./run_demo.sh")]
    return [shlex.split(re.split(r"\s{2,}", line.split("#")[0].strip())[0])[1:] for line in lines]


@pytest.mark.parametrize("source", ["README.md", "docs/app.md", "--help"])
def test_every_demo_command_shown_to_users_parses(source: str, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """The commands in the README and in --help's examples are accepted as written: by the app's parser and by
    its checks of the flags' values and combinations (those that ask for CUDA only where there is one)."""
    from app.cli import EPILOG, build_parser, validate

    monkeypatch.chdir(ROOT)  # the commands name files of the repository (weights/...)
    text = EPILOG if source == "--help" else (ROOT / source).read_text()
    commands = _demo_commands(text)
    assert len(commands) >= 3
    calibration = tmp_path / "webcam.json"  # the user's own calibration file, which a command names
    calibration.write_text('{"K": [[600, 0, 320], [0, 600, 240], [0, 0, 1]], "dist": [0.1, -0.1, 0, 0]}')
    for argv in commands:
        argv = [str(calibration) if index and argv[index - 1] == "--calibration" else value
                for index, value in enumerate(argv)]
        args = build_parser().parse_args(argv)  # a flag that does not exist (any more) exits with code 2
        if "cuda" not in argv or torch.cuda.is_available():
            validate(args)  # e.g. --blend_anchor without --geometry homography is an AppError


def test_the_readme_is_a_front_page() -> None:
    """One screen's worth: under 150 lines of at most 120 characters, and no history (dates) in any document."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 150
    assert [line for line in lines if len(line) > 120] == []
    for name in (*DOCUMENTS, "weights/README.md"):
        assert re.findall(r"\b20\d\d-\d\d-\d\d\b", (ROOT / name).read_text()) == [], name


def test_the_generated_tables_are_up_to_date() -> None:
    """The README's keys and docs/app.md's flags are what the code has (else: python -m app.doc_tables)."""
    from app.doc_tables import TABLES, stale_tables

    assert stale_tables() == [], "run: .venv/bin/python -m app.doc_tables"
    assert all(f"<!-- generated: {name} -->" in (ROOT / file).read_text() for file, tables in TABLES.items()
               for name in tables)


def test_a_changed_flag_makes_the_flags_table_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.cli
    from app.doc_tables import stale_tables

    for name in ("README.md", "docs/app.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text())
    build = app.cli.build_parser

    def with_new_flag() -> object:
        parser = build()
        parser.add_argument("--new_flag", help="something new")
        return parser

    monkeypatch.setattr(app.cli, "build_parser", with_new_flag)
    assert stale_tables(tmp_path) == ["docs/app.md: flags"]
