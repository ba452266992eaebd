"""ONNX export (``model.export``, ``python -m model export``) and the ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from model.__main__ import main  # noqa: E402
from model.checkpoints import save_weights  # noqa: E402
from model.config import get_preset  # noqa: E402
from model.export import ExportInfo, OnnxMatcher, StaticLoFTR, coarse_cells, export_onnx  # noqa: E402
from model.loftr import LoFTR  # noqa: E402
from model.matcher import Matcher  # noqa: E402
from model.transformer import LinearAttention, _linear_attention_matmul  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZE = (160, 120)


def _export(tmp_path: Path, weights: str | Path, preset: str | None, candidates: int,
            threshold: float | None = None) -> tuple[Matcher, Path]:
    matcher = Matcher(weights, preset=preset, device="cpu", precision="fp32", resize=SIZE, threshold=threshold,
                      max_matches=candidates)
    matcher.refinement = "none"  # the exported network alone: the refinement on the images runs on the host
    info = ExportInfo(matcher.name, *SIZE, candidates, matcher.threshold, matcher.border_rm,
                      matcher.fine_expectation, "test")
    path = tmp_path / f"{matcher.name}.onnx"
    export_onnx(matcher.model, info, path)
    return matcher, path


def _assert_same_matches(matcher: Matcher, path: Path, pair: tuple[np.ndarray, np.ndarray]) -> None:
    expected = matcher.match(*pair)
    exported = OnnxMatcher(path, max_matches=matcher.max_matches).match(*pair)
    assert len(expected) > 10
    assert len(exported) == len(expected)
    np.testing.assert_allclose(exported.keypoints0, expected.keypoints0, atol=1e-3)
    np.testing.assert_allclose(exported.keypoints1, expected.keypoints1, atol=2e-2)
    np.testing.assert_allclose(exported.confidence, expected.confidence, atol=1e-4)


def test_bundled_weights_export_and_match_as_in_pytorch(tmp_path: Path,
                                                        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    matcher, path = _export(tmp_path, ROOT / "weights" / "loftr_live_xfeat_s.pt", None, candidates=64)
    _assert_same_matches(matcher, path, photo_pair)
    graph = onnx.load(str(path)).graph
    assert "Einsum" not in {node.op_type for node in graph.node}
    shapes = [[dim.dim_value for dim in value.type.tensor_type.shape.dim] for value in graph.input]
    assert shapes == [[1, 1, SIZE[1], SIZE[0]]] * 2  # static: no symbolic dimension
    assert OnnxMatcher(path).info.preset == "xfeat_s"


def test_official_optimal_transport_preset_exports(tmp_path: Path,
                                                   photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    save_weights(tmp_path / "ot.pt", LoFTR(get_preset("indoor_ot")))
    matcher, path = _export(tmp_path, tmp_path / "ot.pt", None, candidates=coarse_cells(*SIZE), threshold=0.0)
    _assert_same_matches(matcher, path, photo_pair)


def test_top_candidates_keep_only_mutual_neighbours_inside_the_border() -> None:
    model = LoFTR(get_preset("compact_s")).eval()
    static = StaticLoFTR(model, candidates=3, border_rm=1, fine_expectation="window")
    conf = torch.zeros(1, 16, 16)  # 4 x 4 cells each; only cells 5, 6, 9, 10 are inside a 1-cell border
    conf[0, 5, 6], conf[0, 6, 6], conf[0, 10, 9], conf[0, 0, 0] = 0.9, 0.5, 0.7, 0.95
    coarse = static._top_candidates(conf, (4, 4), (4, 4))
    assert coarse.i_ids.tolist()[:2] == [5, 10] and coarse.j_ids.tolist()[:2] == [6, 9]
    assert coarse.mconf.tolist() == pytest.approx([0.9, 0.7, 0.0])  # 6 -> 6 is not mutual, 0 is on the border


def test_einsum_free_linear_attention_matches() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 7, 4, 8), torch.randn(2, 5, 4, 8), torch.randn(2, 5, 4, 8)
    qf, kf = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    expected = LinearAttention(eps=1e-6)(q, k, v)
    torch.testing.assert_close(_linear_attention_matmul(qf, kf, v / 5, 1e-6 / 5), expected, atol=1e-5, rtol=1e-5)


def test_export_command_and_onnxruntime_backend(tmp_path: Path, photo_pair: tuple[np.ndarray, np.ndarray],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "m.onnx"
    code = main(["export", str(ROOT / "weights" / "loftr_live_compact_s.pt"), "--resize", "160", "120",
                 "--candidates", "100", "--output", str(output)])
    out = capsys.readouterr().out
    assert code == 0 and output.is_file()
    assert "100.0% of PyTorch's found again" in out
    for index, image in enumerate(photo_pair):
        cv2.imwrite(str(tmp_path / f"{index}.png"), image)
    code = main(["match", str(tmp_path / "0.png"), str(tmp_path / "1.png"), "--backend", "onnxruntime",
                 "--weights", str(output), "--output", str(tmp_path / "m.npz")])
    assert code == 0
    matches = np.load(tmp_path / "m.npz")
    assert 10 < len(matches["confidence"]) <= 100
    height, width = photo_pair[1].shape[:2]
    assert matches["keypoints1"][:, 0].max() > width / 2 and matches["keypoints1"][:, 1].max() < height


@pytest.mark.parametrize("argv, message", [
    (["export", "missing.pt", "--output", "{tmp}/m.onnx"], "not found"),
    (["export", "weights/loftr_live_xfeat_s.pt", "--resize", "161", "120", "--output", "{tmp}/m.onnx"],
     "multiple of 8"),
    (["export", "weights/loftr_live_xfeat_s.pt", "--output", "{tmp}/m.txt"], "give a .onnx path"),
    (["match", "a.png", "b.png", "--backend", "onnxruntime", "--any_rotation"], "--any_rotation"),
    (["match", "a.png", "b.png", "--backend", "onnxruntime", "--weights", "{tmp}/not_ours.onnx"], "not a LoFTR"),
])
def test_export_errors_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                    photo_pair: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for name, image in zip(("a.png", "b.png"), photo_pair, strict=True):
        cv2.imwrite(str(tmp_path / name), image)
    argv = [str(tmp_path / arg) if arg in ("a.png", "b.png") else arg.format(tmp=tmp_path) for arg in argv]
    identity = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                      [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                      [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(identity), str(tmp_path / "not_ours.onnx"))
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
