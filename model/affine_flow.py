"""Affine Lucas-Kanade for matches whose content turned or changed scale between the images.

OpenCV's pyramidal Lucas-Kanade (``model.refine``) moves a square window by a translation only: where the content
turned by more than a few degrees or changed its scale, the windows no longer agree, the backward check fails and the
match keeps the network's position (on the network's grid, two image pixels apart at the live setting). Here each
match first gets the rotation and scale its neighbours show (``local_similarity``), then the window in image 1 is
warped by a full affine transform fitted to image 0's window (inverse compositional Lucas-Kanade, Baker & Matthews
2004, with each window's brightness and contrast normalised), starting from that similarity. weights/README.md (Affine
windows) has what it gains: ``python -m model eval --compare W --compare_refinement corners``.
"""

from __future__ import annotations

import cv2
import numpy as np


def local_similarity(points0: np.ndarray, points1: np.ndarray, neighbours: int,
                     min_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Each match's rotation and scale from image 0 to image 1, as its neighbours in image 0 show them.

    points0, points1: [N, 2] matched points. For each match, the vectors to its ``neighbours`` nearest matches in
    image 0 at least ``min_distance`` away (closer ones turn too much with the points' own errors) and the same
    vectors in image 1 give a rotation and a scale each; the medians are robust to a few wrong neighbours.
    Returns (similarities [N, 2, 2] float32, valid [N] bool: at least three neighbours; the identity where not).
    """
    count = len(points0)
    similarities = np.tile(np.eye(2, dtype=np.float32), (count, 1, 1))
    if count < 4:
        return similarities, np.zeros(count, bool)
    # Equally distant neighbours (the network's grid has many) are taken in the points' order in image 0, so the
    # result does not depend on the order the matches come in.
    order = np.lexsort((points0[:, 1], points0[:, 0]))
    similarities[order], valid = _similarities(points0[order], points1[order], neighbours, min_distance)
    result = np.zeros(count, bool)
    result[order] = valid
    return similarities, result


def _similarities(points0: np.ndarray, points1: np.ndarray, neighbours: int,
                  min_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """``local_similarity`` for points in a fixed order."""
    count = len(points0)
    x, y = points0[:, 0], points0[:, 1]
    distances = np.square(x[:, None] - x[None]) + np.square(y[:, None] - y[None])  # squared: the order is the same
    distances[distances < min_distance ** 2] = np.inf
    nearest = np.argpartition(distances, min(neighbours, count - 1) - 1, axis=1)[:, :min(neighbours, count - 1)]
    usable = np.isfinite(np.take_along_axis(distances, nearest, 1))
    vectors0, vectors1 = _complex(points0[nearest] - points0[:, None]), _complex(points1[nearest] - points1[:, None])
    turns = np.angle(vectors1 * np.conj(vectors0))
    # The median of angles around their circular mean (no jump at +-180 degrees).
    mean = np.angle(np.where(usable, np.exp(1j * turns), 0).sum(axis=1))
    around = np.angle(np.exp(1j * (turns - mean[:, None])))
    with np.errstate(divide="ignore", invalid="ignore"):  # two matches on one point in image 1: no scale from them
        log_scales = np.log(np.abs(vectors1)) - np.log(np.abs(vectors0))
    valid = usable.sum(axis=1) >= 3
    angle = np.where(valid, mean + _median(around, usable), 0.0)
    scale = np.where(valid, np.exp(_median(log_scales, usable & np.isfinite(log_scales))), 1.0)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2).astype(np.float32), valid


def _median(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Each row's median [N] over its usable entries ([N, K] each; 0 where a row has none); much faster than
    ``np.nanmedian``."""
    ordered = np.sort(np.where(usable, values, np.inf), axis=1)
    counts = usable.sum(axis=1)
    low = np.take_along_axis(ordered, np.maximum(counts - 1, 0)[:, None] // 2, 1)[:, 0]
    high = np.take_along_axis(ordered, (counts // 2)[:, None], 1)[:, 0] if ordered.shape[1] else low
    return np.where(counts > 0, 0.5 * (low + high), 0.0)


def _complex(vectors: np.ndarray) -> np.ndarray:
    return vectors[..., 0] + 1j * vectors[..., 1].astype(np.float64)


def turn_and_log_scale(similarities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, 2, 2] similarities -> (|rotation| in degrees [N], |log scale| [N])."""
    angle = np.degrees(np.abs(np.arctan2(similarities[:, 1, 0], similarities[:, 0, 0])))
    return angle, np.abs(0.5 * np.log(np.abs(np.linalg.det(similarities)) + 1e-12))


def window_offsets(window: int, stride: int = 1) -> np.ndarray:
    """[S, 2] float32: the (x, y) offsets from its centre of every ``stride``-th pixel of a square window of side
    ``window`` (odd), in both directions."""
    reach = np.arange(-(window // 2), window // 2 + 1, stride, dtype=np.float32)
    return np.stack(np.meshgrid(reach, reach), axis=-1).reshape(-1, 2)


def _normalised(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows [N, S] -> (zero mean, unit norm; their norms [N, 1]): the comparison ignores brightness and
    contrast."""
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True) + 1e-6
    return centred / norms, norms


#: The warp's parameters (inverse compositional, at the identity): x' = x + (p0 x + p2 y + p4, p1 x + p3 y + p5).
#: Steepest-descent image i is (d/dx or d/dy)[_GRADIENT[i]] times _MONOMIAL[i] of the window offsets (x, y, 1).
_GRADIENT = (0, 1, 0, 1, 0, 1)
_MONOMIAL = (0, 0, 1, 1, 2, 2)


def _template(image0: tuple[np.ndarray, np.ndarray, np.ndarray], centres0: np.ndarray, offsets: np.ndarray,
              translation_only: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image 0's windows around ``centres0`` [N, 2]: (normalised windows [N, S], their normalised gradients
    [N, 2, S], the inverse of the Hessians [N, P, P] of the P = 2 or 6 parameters) for the inverse compositional
    step. Each Hessian entry is a sum over the window of a product of gradients times a product of offsets, so all
    of them come from one matrix product (no [N, P, S] steepest-descent images)."""
    grid = _warped_grid(centres0.astype(np.float32), np.tile(np.eye(2, dtype=np.float32), (len(centres0), 1, 1)),
                        offsets)
    template, norms = _normalised(_sample(image0[0], grid))
    gradients = np.stack([_sample(gradient, grid) / norms for gradient in image0[1:]], axis=1)  # [N, 2, S]
    x, y = offsets[:, 0], offsets[:, 1]
    monomials = np.stack([x, y, np.ones_like(x)])  # [3, S]
    grad_x, grad_y = gradients[:, 0], gradients[:, 1]
    products = np.stack([grad_x**2, grad_x * grad_y, grad_y**2])  # [3, N, S]
    pair_monomials = (monomials[:, None] * monomials[None]).reshape(9, -1).T  # [S, 9]: (x, y, 1) x (x, y, 1)
    sums = (products @ pair_monomials).astype(np.float64)  # [3, N, 9]
    parameters = range(4, 6) if translation_only else range(6)
    hessian = np.stack([np.stack([sums[_GRADIENT[i] + _GRADIENT[j], :, 3 * _MONOMIAL[i] + _MONOMIAL[j]]
                                  for j in parameters], axis=-1) for i in parameters], axis=-2)  # [N, P, P]
    # A little damping: flat or one-directional windows stay solvable (they fail the checks later).
    hessian += (1e-4 * np.trace(hessian, axis1=1, axis2=2)[:, None, None] + 1e-9) * np.eye(len(parameters))
    return template, gradients, np.linalg.inv(hessian).astype(np.float32)


def _steepest_descent(gradients: np.ndarray, residual: np.ndarray, monomials: np.ndarray,
                      translation_only: bool) -> np.ndarray:
    """The steepest-descent images times the residual [A, S] -> [A, P]: two products and one matrix product."""
    weighted = (gradients * residual[:, None]) @ monomials.T  # [A, 2, 3]: (d/dx, d/dy) x (x, y, 1)
    parameters = range(4, 6) if translation_only else range(6)
    return weighted[:, [_GRADIENT[i] for i in parameters], [_MONOMIAL[i] for i in parameters]]


def _sample(image: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Bilinear samples [N, S] of a float32 image at ``grid`` = (x [N, S], y [N, S]) (pixel centres at integers)."""
    return cv2.remap(image, grid[0], grid[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def affine_lucas_kanade(image0: tuple[np.ndarray, np.ndarray, np.ndarray], gray1: np.ndarray, centres0: np.ndarray,
                        starts1: np.ndarray, warps: np.ndarray, offsets: np.ndarray, iterations: int,
                        translation_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where image 0's windows around ``centres0`` lie in image 1, as affine warps.

    image0: (gray, d/dx, d/dy) float32 [h, w] each; gray1: float32; centres0: [N, 2] pixel centres in image 0;
    starts1: [N, 2] first guesses in image 1; warps: [N, 2, 2] first guesses of the linear part (image 0 offsets
    -> image 1 offsets), fitted too unless ``translation_only``; offsets: the window's pixels [S, 2]
    (``window_offsets``). Inverse compositional: image 0's windows and their Hessians are set up once, each step
    warps image 1 only. A window stops once its step moves it less than 0.01 pixels, or after ``iterations`` steps.
    Returns (positions in image 1 [N, 2], warps [N, 2, 2], zero-mean normalised cross-correlation [N] of the
    windows at the last step's start; -1 where a window's step diverged or its last step still moved it 0.1 pixels
    or more).
    """
    monomials = np.stack([offsets[:, 0], offsets[:, 1], np.ones(len(offsets), np.float32)])
    template, gradients, inverse_hessian = _template(image0, centres0, offsets, translation_only)
    positions, linear = starts1.astype(np.float32).copy(), warps.astype(np.float32).copy()
    correlation = np.full(len(positions), -1.0, np.float32)
    last_step_ok = np.zeros(len(positions), bool)
    # The windows still moving and their state, made smaller only when some stop (no copies on every step).
    work = np.arange(len(positions))
    state = (template, gradients, inverse_hessian, positions.copy(), linear.copy())
    for _ in range(iterations):
        if len(work) == 0:
            break
        windows, window_gradients, window_inverse_hessian, at, warp = state
        warped = _normalised(_sample(gray1, _warped_grid(at, warp, offsets)))[0]
        # At the step's start (the last step moves a kept window by less than a tenth of a pixel): no extra sampling.
        correlation[work] = np.einsum("as,as->a", warped, windows)
        descent = _steepest_descent(window_gradients, warped - windows, monomials, translation_only)
        new_at, new_warp = _composed(window_inverse_hessian @ descent[..., None], at, warp)
        with np.errstate(all="ignore"):
            moved = np.linalg.norm(new_at - at, axis=1)
        # A step of more than 10 pixels (they are a few tenths near the answer) diverges: the window stops there.
        finite = np.isfinite(new_at).all(axis=1) & np.isfinite(new_warp).all(axis=(1, 2)) & (moved < 10.0)
        positions[work[finite]], linear[work[finite]] = new_at[finite], new_warp[finite]
        last_step_ok[work] = finite & (moved < 0.1)
        going = finite & (moved >= 0.01)
        state = (windows, window_gradients, window_inverse_hessian, new_at, new_warp)
        if not going.all():
            work = work[going]
            state = tuple(part[going] for part in state)
    correlation[~last_step_ok] = -1.0  # diverged, or still moving after the last step
    return positions, linear, correlation


def _composed(step: np.ndarray, at: np.ndarray, warp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse compositional update: the warp (``at`` [A, 2] + ``warp`` [A, 2, 2] x) composed with the inverse
    of the step's (``step`` [A, P, 1], P = 6, or 2 for a translation only)."""
    step = step[..., 0]
    if step.shape[1] == 2:
        step = np.concatenate([np.zeros((len(step), 4), np.float32), step], axis=1)
    step_linear = np.eye(2, dtype=np.float32) + step[:, [0, 2, 1, 3]].reshape(-1, 2, 2)
    with np.errstate(all="ignore"):
        new_warp = warp @ _inverse_2x2(step_linear)
        return at - (new_warp @ step[:, 4:, None])[..., 0], new_warp


def _inverse_2x2(matrices: np.ndarray) -> np.ndarray:
    """[N, 2, 2] inverses by the closed form: a singular matrix gives inf/NaN (caught as divergence), never an
    exception for the whole batch."""
    (a, b), (c, d) = matrices[:, 0].T, matrices[:, 1].T
    return np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / (a * d - b * c)[:, None, None]


def _warped_grid(positions: np.ndarray, linear: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window's pixels in image 1, positions [N, 2] + linear [N, 2, 2] @ offsets [S, 2]: (x [N, S], y [N, S])
    float32, as one matrix product of each window's [translation | linear] rows with the offsets' (1, x, y)."""
    rows = np.concatenate([positions[:, :, None], linear], axis=2).reshape(-1, 3)  # [2N, 3]: (t, a, b) for x, y
    basis = np.concatenate([np.ones((1, len(offsets)), np.float32), offsets.T])  # [3, S]
    grid = (rows.astype(np.float32) @ basis).reshape(len(positions), 2, -1)
    return np.ascontiguousarray(grid[:, 0]), np.ascontiguousarray(grid[:, 1])
