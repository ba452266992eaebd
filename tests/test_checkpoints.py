"""Every checkpoint format loads strictly; every bad file is one clear line."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

from model.checkpoints import CheckpointError, load_weights, save_weights
from model.config import OFFICIAL_PRESETS, get_preset
from model.loftr import LoFTR


@pytest.fixture(scope="module")
def compact() -> LoFTR:
    return LoFTR(get_preset("compact_s")).eval()


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    return LoFTR(OFFICIAL_PRESETS["outdoor_ds"]).state_dict()


def _assert_same_weights(model: LoFTR, state: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key.removeprefix("matcher.")].to(value.dtype))


def test_official_lightning_file(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "outdoor_ds.ckpt"
    torch.save({"state_dict": {f"matcher.{k}": v for k, v in official_state.items()}, "epoch": 3}, path)
    loaded = load_weights(path)
    assert (loaded.source, loaded.config.name) == ("official", "outdoor_ds")
    _assert_same_weights(loaded.model, official_state)


def test_plain_state_dict_and_forced_preset(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "weights.pth"
    torch.save(official_state, path)
    assert load_weights(path).config.name == "outdoor_ds"  # no hint in the name: the common default
    forced = load_weights(path, preset="indoor_ds_new")
    assert forced.config.temp_bug_fix is True
    _assert_same_weights(forced.model, official_state)


def test_ot_file_is_recognised_by_its_bin_score(tmp_path: Path) -> None:
    state = LoFTR(OFFICIAL_PRESETS["indoor_ot"]).state_dict()
    assert "coarse_matching.bin_score" in state
    path = tmp_path / "indoor_model.ckpt"
    torch.save({"state_dict": {f"matcher.{k}": v for k, v in state.items()}}, path)
    loaded = load_weights(path)
    assert loaded.config.name == "indoor_ot"
    with torch.no_grad():
        image = torch.rand(1, 1, 96, 128)
        result = loaded.model({"image0": image, "image1": image})
    assert result["conf_matrix"].shape == (1, 192, 192)


def test_side_data_of_unknown_classes_is_tolerated(tmp_path: Path, official_state: dict[str, torch.Tensor]) -> None:
    # Lightning files can carry config objects (e.g. a yacs CfgNode) that this program cannot import.
    config_like = collections.OrderedDict(LOFTR={"MATCH_COARSE": {"THR": 0.2}})
    path = tmp_path / "indoor_ds.ckpt"
    torch.save({"state_dict": official_state, "hyper_parameters": config_like}, path)
    assert load_weights(path).config.name == "indoor_ds"


def test_project_format_round_trip(tmp_path: Path, compact: LoFTR) -> None:
    path = tmp_path / "ours.pt"
    save_weights(path, compact, {"trained_steps": 12}, half=False)
    loaded = load_weights(path)
    assert loaded.source == "project" and loaded.config == compact.config
    assert loaded.metadata == {"trained_steps": 12}
    _assert_same_weights(loaded.model, compact.state_dict())
    save_weights(path, compact, half=True)
    assert load_weights(path).model.backbone.conv1.weight.dtype == torch.float32


def _message(path: Path, preset: str | None = None) -> str:
    with pytest.raises(CheckpointError) as error:
        load_weights(path, preset)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_bad_files_give_one_clear_line(tmp_path: Path, compact: LoFTR, official_state: dict[str, torch.Tensor]) -> None:
    assert "not found" in _message(tmp_path / "missing.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert "empty" in _message(tmp_path / "empty.ckpt")
    (tmp_path / "notes.ckpt").write_text("these are not weights")
    assert "not a PyTorch checkpoint" in _message(tmp_path / "notes.ckpt")
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": official_state}, good)
    (tmp_path / "cut.ckpt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated or corrupt" in _message(tmp_path / "cut.ckpt")
    torch.save({"optimizer": {"lr": torch.tensor(1.0)}}, tmp_path / "other.ckpt")
    assert "not a LoFTR checkpoint" in _message(tmp_path / "other.ckpt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "classifier.ckpt")
    assert "no 'backbone.*' weights" in _message(tmp_path / "classifier.ckpt")
    torch.save([1, 2, 3], tmp_path / "list.ckpt")
    assert "expected a dict" in _message(tmp_path / "list.ckpt")
    partial = {k: v for k, v in official_state.items() if not k.startswith("loftr_fine")}
    torch.save(partial, tmp_path / "partial.ckpt")
    assert "missing keys" in _message(tmp_path / "partial.ckpt")
    torch.save(compact.state_dict(), tmp_path / "small.ckpt")
    assert "missing keys" in _message(tmp_path / "small.ckpt", preset="outdoor_ds")
    reshaped = dict(official_state, **{"backbone.conv1.weight": torch.zeros(64, 1, 7, 7)})
    torch.save(reshaped, tmp_path / "reshaped.ckpt")
    assert "shape of backbone.conv1.weight is (64, 1, 7, 7), expected (128, 1, 7, 7)" in _message(
        tmp_path / "reshaped.ckpt")
    extra = dict(official_state, **{"coarse_matching.bin_score": torch.tensor(1.0)})
    torch.save(extra, tmp_path / "extra.ckpt")
    assert "unexpected keys" in _message(tmp_path / "extra.ckpt", preset="outdoor_ds")
