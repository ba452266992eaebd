"""Where the command lines keep torch.compile's cache (model/compile_cache.py)."""

from __future__ import annotations

import os
from pathlib import Path

from model.compile_cache import CACHE_VARIABLE, keep_compile_cache


def test_the_cache_goes_to_the_users_cache_folder(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = keep_compile_cache()
    assert folder == tmp_path / "loftr_live" / "torchinductor" and folder.is_dir() and not any(folder.iterdir())
    assert os.environ[CACHE_VARIABLE] == str(folder)  # where torch looks when it compiles


def test_a_cache_folder_set_by_the_user_is_kept(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert keep_compile_cache() == tmp_path / "mine"
    assert os.environ[CACHE_VARIABLE] == str(tmp_path / "mine") and not (tmp_path / "xdg").exists()


def test_an_unwritable_cache_folder_leaves_torchs_default(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    (tmp_path / "loftr_live").write_text("a file where the folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert keep_compile_cache() is None and CACHE_VARIABLE not in os.environ
