"""Loading and saving LoFTR weights.

Understood formats:
- official Lightning ``.ckpt``: ``{'state_dict': {'matcher.backbone...': ...}, ...}``;
- kornia's copies of those files (same layout) and a kornia ``LoFTR.state_dict()`` saved as is;
- a plain state dict (``{'backbone.conv1.weight': ...}``);
- the project's self-describing format: weights plus the full config and metadata (``save_weights``).

Every failure is a :class:`CheckpointError` whose message is one line naming the file and the problem.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import OFFICIAL_PRESETS, LoFTRConfig, get_preset
from .loftr import LoFTR

PROJECT_FORMAT = "loftr-live-weights"
PROJECT_FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message is one line meant for the user."""


@dataclass
class LoadedWeights:
    """A model built from a file, with what the file said about itself."""

    model: LoFTR
    config: LoFTRConfig
    path: Path
    source: str  # "official", "plain" or "project"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"{self.config.name} ({self.source} weights, {self.path.name})"


class _UnknownObject(dict):
    """Stands in for objects of classes this program does not know (e.g. a yacs config in hyper_parameters)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _read(path: Path) -> Any:
    """torch.load with weights_only=True; unknown classes in side data are replaced by plain dicts."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"weights path is a folder, not a file: {path}")
    raw = path.read_bytes()
    if len(raw) == 0:
        raise CheckpointError(f"weights file is empty: {path}")
    unknown: list[Any] = []
    if raw[:2] == b"PK":
        try:
            zipfile.ZipFile(io.BytesIO(raw)).testzip()
        except (zipfile.BadZipFile, EOFError, OSError):
            raise CheckpointError(f"weights file is truncated or corrupt (broken zip archive): {path}") from None
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(raw))
            unknown = [(_UnknownObject, name) for name in names]
        except Exception:  # noqa: BLE001 - listing is best effort; the load below reports real problems
            pass
    elif raw[:1] != b"\x80":
        raise CheckpointError(f"not a PyTorch checkpoint (unrecognised file content): {path}")
    try:
        with torch.serialization.safe_globals(unknown):
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise CheckpointError(f"cannot read weights file {path}: {str(error).strip()[:200]}") from None
        # PyTorch's own message advises loading the file as code, which a hostile file must never get.
        raise CheckpointError(f"{path} is not a plain weights file (it holds Python objects, not only tensors) and "
                              "is refused for safety; export the state dict (tensors) and load that") from None
    except (RuntimeError, EOFError, ValueError, AttributeError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read weights file {path}: {first_line}") from None


def _state_dict_of(content: Any, path: Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """(state dict without 'matcher.' prefixes, source kind, project metadata incl. config)."""
    if not isinstance(content, dict):
        raise CheckpointError(f"not a LoFTR checkpoint (contains a {type(content).__name__}, expected a dict): {path}")
    if content.get("format") == PROJECT_FORMAT:
        version = content.get("version")
        if version != PROJECT_FORMAT_VERSION:
            raise CheckpointError(f"unsupported weights format version {version!r} in {path}; update LoFTR Live")
        state, source, meta = content.get("state_dict"), "project", dict(content)
    elif isinstance(content.get("state_dict"), dict):
        state, source, meta = content["state_dict"], "official", {}
    else:
        state, source, meta = content, "plain", {}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"not a LoFTR checkpoint (no tensor state dict found): {path}")
    state = {(k[len("matcher."):] if k.startswith("matcher.") else k): v for k, v in state.items()}
    if not any(k.startswith("backbone.") for k in state):
        raise CheckpointError(f"not a LoFTR checkpoint (no 'backbone.*' weights): {path}")
    return state, source, meta


def infer_official_preset(path: Path, state: dict[str, torch.Tensor]) -> str:
    """Preset of an official file from its name and keys; OT files are told apart by their ``bin_score``."""
    is_ot = "coarse_matching.bin_score" in state
    name = path.name.lower()
    if re.search(r"indoor_(ds_)?new", name):
        return "indoor_ds_new"
    domain = "indoor" if "indoor" in name else "outdoor"
    return f"{domain}_{'ot' if is_ot else 'ds'}"


def _strict_load(model: LoFTR, state: dict[str, torch.Tensor], path: Path, config: LoFTRConfig) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    hint = f"the file does not fit preset {config.name!r}"
    if missing:
        raise CheckpointError(f"{hint}: {len(missing)} missing keys (e.g. {missing[0]}) in {path}")
    if unexpected:
        raise CheckpointError(f"{hint}: {len(unexpected)} unexpected keys (e.g. {unexpected[0]}) in {path}")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise CheckpointError(f"{hint}: shape of {key} is {tuple(state[key].shape)}, "
                                  f"expected {tuple(value.shape)} in {path}")
    model.load_state_dict({key: state[key].to(value.dtype) for key, value in expected.items()}, strict=True)


def load_weights(path: str | os.PathLike[str], preset: str | None = None) -> LoadedWeights:
    """Build a LoFTR (eval mode, CPU) from a weights file.

    Args:
        path: a file in any of the understood formats.
        preset: force this preset; by default the project format says its own config and official files
            are recognised by name and keys.
    """
    path = Path(path)
    state, source, meta = _state_dict_of(_read(path), path)
    if preset is not None:
        config = get_preset(preset)
    elif source == "project":
        try:
            config = LoFTRConfig.from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"invalid config in weights file {path}: {error}") from None
    else:
        config = OFFICIAL_PRESETS[infer_official_preset(path, state)]
    model = LoFTR(config)
    _strict_load(model, state, path, config)
    return LoadedWeights(model.eval(), config, path, source, dict(meta.get("metadata", {})))


def save_weights(path: str | os.PathLike[str], model: LoFTR, metadata: dict[str, Any] | None = None,
                 half: bool = True) -> None:
    """Write the project's self-describing format atomically (tmp file + rename).

    ``half`` stores floating tensors as fp16 to halve the file; they are restored to fp32 on load.
    """
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    content = {"format": PROJECT_FORMAT, "version": PROJECT_FORMAT_VERSION, "config": model.config.to_dict(),
               "metadata": metadata or {}, "state_dict": state}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(content, tmp)
    os.replace(tmp, path)
