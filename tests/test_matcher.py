"""Matcher: inputs of any kind and size, caller-pixel coordinates, anchor caching, run-time settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from model.config import get_preset
from model.loftr import LoFTR
from model.matcher import Matcher, network_size, parse_resize, resize_array, resolve_device, resolve_precision


@pytest.fixture(scope="module")
def model() -> LoFTR:
    torch.manual_seed(3)
    return LoFTR(get_preset("compact_s")).eval()


def _matcher(model: LoFTR, **kwargs: object) -> Matcher:
    settings = dict(device="cpu", precision="fp32", threshold=0.0)
    settings.update(kwargs)
    matcher = Matcher(model, **settings)  # type: ignore[arg-type]
    matcher.unverified = "keep"  # random weights: their matches seldom verify on the images, and the plumbing is tested
    return matcher


def test_results_are_sorted_and_typed(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    result = _matcher(model, resize=(320, 240)).match(*photo_pair)
    assert len(result) > 20
    assert result.keypoints0.shape == result.keypoints1.shape == (len(result), 2)
    assert result.keypoints0.dtype == np.float32 and result.confidence.dtype == np.float32
    assert np.all(np.diff(result.confidence) <= 0)
    assert set(result.timings_ms) == {"backbone", "coarse_transformer", "coarse_matching", "fine"}


def test_keypoints_are_in_the_callers_pixels(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    small = [cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA) for image in photo_pair]
    at_full = _matcher(model, resize=(320, 240)).match(*photo_pair)
    at_small = _matcher(model, resize=None).match(*small)
    np.testing.assert_allclose(at_full.keypoints0, at_small.keypoints0 * 2, atol=1e-4)
    np.testing.assert_allclose(at_full.keypoints1, at_small.keypoints1 * 2, atol=1e-4)


def test_cached_anchor_gives_the_same_result(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    matcher = _matcher(model, resize=(320, 240))
    direct = matcher.match(*photo_pair)
    anchor = matcher.encode(photo_pair[0])
    assert anchor.features.first_layer is not None  # the anchor's first self-attention layer is cached too
    cached = matcher.match(anchor, photo_pair[1])
    # Same matches; fp32 rounding differs by ~1e-4 px (the first layer runs on one image instead of a batch of two).
    np.testing.assert_allclose(cached.keypoints1, direct.keypoints1, atol=1e-3)
    assert "backbone" in cached.timings_ms
    both_cached = matcher.match(anchor, matcher.encode(photo_pair[1]))
    np.testing.assert_allclose(both_cached.keypoints1, direct.keypoints1, atol=1e-3)
    other = _matcher(model)
    with pytest.raises(ValueError, match="another model"):
        other.match(anchor, photo_pair[1])


def test_run_time_settings(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    matcher = _matcher(model, resize=(320, 240))
    everything = matcher.match(*photo_pair)
    matcher.max_matches = 10
    capped = matcher.match(*photo_pair)
    assert len(capped) == 10
    np.testing.assert_allclose(capped.confidence, everything.confidence[:10], rtol=1e-6)
    matcher.max_matches = None
    matcher.threshold = float(everything.confidence[5])
    assert len(matcher.match(*photo_pair)) == 5  # strictly above the threshold
    matcher.threshold, matcher.border_rm = 0.0, 10
    assert len(matcher.match(*photo_pair)) < len(everything)
    with pytest.raises(ValueError):
        matcher.threshold = 1.5


def test_fine_expectation_is_the_official_one_for_official_presets_and_changes_only_image1s_keypoints(
        model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    assert _matcher(LoFTR(get_preset("outdoor_ds"))).fine_expectation == "window"  # the paper's, kornia's
    matcher = _matcher(model, resize=(320, 240))
    assert matcher.fine_expectation == "peak"  # the project's presets
    peak = matcher.match(*photo_pair)
    matcher.fine_expectation = "window"
    window = matcher.match(*photo_pair)
    np.testing.assert_array_equal(peak.keypoints0, window.keypoints0)  # the same coarse matches
    np.testing.assert_array_equal(peak.confidence, window.confidence)
    assert np.abs(peak.keypoints1 - window.keypoints1).max() > 0.1
    assert np.abs(peak.keypoints1 - window.keypoints1).max() <= 2 * 4 + 1e-3  # within the window: 2 fine px x2
    with pytest.raises(ValueError, match="fine_expectation must be one of window, peak"):
        matcher.fine_expectation = "auto"  # only when constructing


def test_input_kinds_agree(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    matcher = _matcher(model, resize=None)
    bgr0, bgr1 = (cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA) for image in photo_pair)
    gray0, gray1 = (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in (bgr0, bgr1))
    reference = matcher.match(gray0, gray1)
    variants = [
        (bgr0, bgr1),
        (gray0.astype(np.float32) / 255, gray1.astype(np.float32) / 255),
        (torch.from_numpy(gray0), torch.from_numpy(gray1)),
        (torch.from_numpy(gray0)[None, None].float() / 255, torch.from_numpy(gray1)[None, None].float() / 255),
    ]
    for image0, image1 in variants:
        result = matcher.match(image0, image1)
        np.testing.assert_allclose(result.keypoints1, reference.keypoints1, atol=1e-3)


@pytest.mark.parametrize(("size0", "size1"), [((479, 641), (479, 641)), ((240, 320), (300, 200)),
                                              ((20, 30), (20, 30)), ((8, 8), (9, 13))])
def test_odd_tiny_and_mixed_sizes(model: LoFTR, size0: tuple[int, int], size1: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size, dtype=np.uint8) for size in (size0, size1)]
    result = _matcher(model, resize=None).match(*images)
    for keypoints, (height, width) in ((result.keypoints0, size0), (result.keypoints1, size1)):
        assert np.all(keypoints >= -4)
        assert np.all(keypoints[:, 0] <= width + 4) and np.all(keypoints[:, 1] <= height + 4)


def test_blank_image_gives_zero_matches(model: LoFTR) -> None:
    blank = np.full((240, 320), 128, np.uint8)
    result = _matcher(model, threshold=0.2, resize=None).match(blank, blank)
    assert len(result) == 0 and result.keypoints0.shape == (0, 2) and result.confidence.shape == (0,)


def test_resize_rules() -> None:
    assert network_size(480, 640, (320, 240)) == (240, 320)
    assert network_size(480, 640, 320) == (240, 320)
    assert network_size(479, 641, None) == (479, 641)
    assert network_size(1000, 100, 400) == (400, 40)
    assert parse_resize([640, 480]) == (640, 480) and parse_resize([-1]) is None and parse_resize([512]) == 512
    for bad in ([0, 480], [8], [1, 2, 3], [-5]):
        with pytest.raises(ValueError):
            parse_resize(bad)


def test_resize_array_averages_when_shrinking_and_interpolates_when_enlarging() -> None:
    checker = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((8, 8))).astype(np.uint8) * 255  # 32x32, 8 px squares
    shrunk = resize_array(checker, (8, 8))
    np.testing.assert_array_equal(shrunk, cv2.resize(checker, (8, 8), interpolation=cv2.INTER_AREA))
    tiny = np.array([[0, 255], [255, 0]], np.uint8)
    enlarged = resize_array(tiny, (16, 16))
    assert enlarged.shape == (16, 16)
    assert len(np.unique(enlarged)) > 4  # a ramp between the pixels, not 8x8 blocks of two values
    assert resize_array(checker, None) is checker


def test_device_and_precision_resolution() -> None:
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("auto", cpu) in ("bf16", "fp32")
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    with pytest.raises(ValueError):
        resolve_precision("int8", cpu)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_bf16_agrees_with_fp32(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from model.matcher import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        pytest.skip("no native bf16 on this CPU")
    fp32 = _matcher(model, resize=(320, 240), threshold=0.0).match(*photo_pair)
    bf16 = _matcher(model, resize=(320, 240), threshold=0.0, precision="bf16").match(*photo_pair)
    shared = {tuple(p) for p in fp32.keypoints0.tolist()} & {tuple(p) for p in bf16.keypoints0.tolist()}
    assert len(shared) >= 0.5 * len(fp32)


def test_a_preset_with_a_single_fine_cross_layer(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    """xfeat_lite's fine transformer is one cross layer: refined matches, like the self/cross presets."""
    torch.manual_seed(0)
    lite = LoFTR(get_preset("xfeat_lite")).eval()
    assert lite.loftr_fine.layer_names == ("cross",) and len(lite.loftr_fine.layers) == 1
    matcher = _matcher(lite, resize=(320, 240))
    result = matcher.match(matcher.encode(photo_pair[0]), photo_pair[1])
    assert len(result) > 20
    # Refined: image-1 points leave the 8-pixel grid (in network pixels, with the resize undone).
    network_points = result.keypoints1 * np.array([320 / photo_pair[1].shape[1], 240 / photo_pair[1].shape[0]])
    assert np.abs(network_points / 8 - np.round(network_points / 8)).max() > 0.05
    assert np.all(result.fine_std > 0)


def test_region0_keeps_the_most_confident_matches_inside_it(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    matcher = Matcher(LoFTR(get_preset("compact_s")), device="cpu", precision="fp32", resize=(320, 240),
                      threshold=0.0)
    matcher.unverified = "keep"  # random weights (see _matcher)
    anchor = matcher.encode(photo_pair[0])
    everything = matcher.match(anchor, photo_pair[1])
    region = (100.0, 80.0, 400.0, 300.0)  # in photo_pair[0]'s 640x480 pixels

    def inside(points: np.ndarray) -> np.ndarray:
        return (points[:, 0] >= 100) & (points[:, 0] < 400) & (points[:, 1] >= 80) & (points[:, 1] < 300)

    restricted = matcher.match(anchor, photo_pair[1], region0=region)
    assert inside(restricted.keypoints0).all() and len(restricted) == inside(everything.keypoints0).sum() > 0
    matcher.max_matches = 20
    capped = matcher.match(anchor, photo_pair[1], region0=region)
    assert len(capped) == 20 and inside(capped.keypoints0).all()  # the cap counts only the region's matches
    np.testing.assert_allclose(capped.confidence, restricted.confidence[:20], rtol=1e-5)


def test_a_tensor_image_is_matched_where_it_lives_and_like_its_array(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    matcher = Matcher(LoFTR(get_preset("compact_s")), device="cpu", precision="fp32", resize=None,
                      threshold=0.0)  # no resizing: arrays (cv2) and tensors (torch) are resized differently
    gray = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (320, 240)) for image in photo_pair]
    from_arrays = matcher.match(gray[0], gray[1])
    from_tensors = matcher.match(*(torch.from_numpy(image) for image in gray))  # uint8 [H, W] tensors
    np.testing.assert_allclose(from_tensors.keypoints1, from_arrays.keypoints1, atol=1e-3)
    network_input = matcher.preprocess(photo_pair[1])[0]  # the bench's "tensor in": already the network's size
    assert matcher.preprocess(network_input)[0].data_ptr() == network_input.data_ptr()  # no copy on its device


def test_compiled_matcher_matches_as_the_eager_one(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    eager, compiled = _matcher(model, resize=(160, 120)), _matcher(model, resize=(160, 120))
    compiled.compile()
    assert compiled.compiled and compiled.warm_up() is None
    expected, got = eager.match(eager.encode(photo_pair[0]), photo_pair[1]), compiled.match(
        compiled.encode(photo_pair[0]), photo_pair[1])
    assert len(got) == len(expected) > 10
    # The refinement's affine windows may stop up to 0.1 px apart (their last accepted step) from network positions
    # that differ in the last float digits.
    np.testing.assert_allclose(got.keypoints1, expected.keypoints1, atol=0.1)


def test_a_compiler_that_fails_leaves_the_matcher_eager(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real_compile = torch.compile

    def no_compiler(module: torch.nn.Module) -> torch.nn.Module:
        compiled = real_compile(module, backend="eager")

        def failing(*args: object, **kwargs: object) -> object:
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
        monkeypatch.setattr(compiled, "forward", failing)
        return compiled

    matcher = _matcher(model, resize=(160, 120))
    monkeypatch.setattr(torch, "compile", no_compiler)
    matcher.compile()
    assert matcher.compiled
    assert matcher.warm_up() == "InvalidCxxCompiler: No working C++ compiler found"
    assert not matcher.compiled and len(matcher.match(*photo_pair)) > 10


def test_images_too_large_to_match_are_refused_before_any_work(model: LoFTR) -> None:
    """At their own size (resize None) two 8000x6000 images need two 750,000 x 750,000 score matrices: a clear
    MemoryError at once, from encode and from match, instead of minutes of backbone and then the allocator's."""
    matcher = _matcher(model, resize=None)
    huge = np.zeros((6000, 8000), np.uint8)
    with pytest.raises(MemoryError, match="needs about 4500 GB for coarse matching"):
        matcher.encode(huge)
    with pytest.raises(MemoryError, match="matching at 8000x6000 and 8000x6000"):
        matcher.match(huge, huge)
    matcher.resize = (640, 480)  # the same images brought to a size that fits are matched
    assert matcher.match(huge, huge).keypoints0.shape[1] == 2
