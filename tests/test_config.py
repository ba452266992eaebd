"""Presets and config serialisation."""

from __future__ import annotations

import dataclasses

import pytest

from model.config import OFFICIAL_PRESETS, PRESETS, LoFTRConfig, get_preset, with_matching


def test_official_presets_carry_their_checkpoint_settings() -> None:
    assert set(OFFICIAL_PRESETS) == {"indoor_ds", "indoor_ds_new", "outdoor_ds", "indoor_ot", "outdoor_ot"}
    assert OFFICIAL_PRESETS["indoor_ds_new"].temp_bug_fix is True
    for name in ("indoor_ds", "outdoor_ds", "indoor_ot", "outdoor_ot"):
        assert OFFICIAL_PRESETS[name].temp_bug_fix is False
    for name, config in OFFICIAL_PRESETS.items():
        expected = "sinkhorn" if name.endswith("_ot") else "dual_softmax"
        assert config.match_coarse.match_type == expected
        assert config.match_coarse.thr == 0.2 and config.match_coarse.border_rm == 2
        assert config.coarse.d_model == 256 and config.coarse.layer_names == ("self", "cross") * 4
        assert config.backbone.block_dims == (128, 196, 256)


def test_configs_are_frozen_and_changes_do_not_bleed() -> None:
    indoor = get_preset("indoor_ds_new")
    with pytest.raises(dataclasses.FrozenInstanceError):
        indoor.temp_bug_fix = False  # type: ignore[misc]
    relaxed = with_matching(indoor, thr=0.05)
    assert relaxed.match_coarse.thr == 0.05
    assert get_preset("indoor_ds_new").match_coarse.thr == 0.2
    assert get_preset("outdoor_ds").match_coarse.thr == 0.2


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip_through_dict(name: str) -> None:
    config = PRESETS[name]
    assert LoFTRConfig.from_dict(config.to_dict()) == config


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown config keys"):
        LoFTRConfig.from_dict({"nonsense": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("indoor_xl")
    with pytest.raises(ValueError, match="must equal the backbone's coarse width"):
        dataclasses.replace(get_preset("outdoor_ds"), coarse=get_preset("compact_s").coarse)
