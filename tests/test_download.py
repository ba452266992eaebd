"""Which weights are used by default, and ``python -m model.weights download`` against a local HTTP server
(never the internet)."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import torch

import model.weights as weights_module
from model.checkpoints import CheckpointError, load_weights
from model.config import OFFICIAL_PRESETS
from model.loftr import LoFTR
from model.weights import DownloadError, default_weights_path, download, main


class _Server:
    """Serves fixed bytes at /file.ckpt with HTTP Range support, counting the bytes sent."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.sent = payload, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path != "/file.ckpt":
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(server.payload):
                        self.send_error(416)
                        return
                    self.send_response(206)
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.sent += len(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.ckpt"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    state = LoFTR(OFFICIAL_PRESETS["indoor_ds_new"]).state_dict()
    torch.save({"state_dict": {f"matcher.{k}": v for k, v in state.items()}}, buffer)
    return buffer.getvalue()


@pytest.fixture
def server(checkpoint_bytes: bytes) -> Iterator[_Server]:
    serving = _Server(checkpoint_bytes)
    yield serving
    serving.close()


def test_download_verifies_and_writes_atomically(server: _Server, tmp_path: Path) -> None:
    path = download("indoor_ds_new", tmp_path, (server.url,), stream=io.StringIO())
    assert path == tmp_path / "indoor_ds_new.ckpt" and path.read_bytes() == server.payload
    assert not (tmp_path / "indoor_ds_new.ckpt.part").exists()


def test_download_resumes_a_partial_file(server: _Server, tmp_path: Path) -> None:
    half = len(server.payload) // 2
    (tmp_path / "indoor_ds_new.ckpt.part").write_bytes(server.payload[:half])
    download("indoor_ds_new", tmp_path, (server.url,), stream=io.StringIO())
    assert server.sent == len(server.payload) - half
    assert (tmp_path / "indoor_ds_new.ckpt").read_bytes() == server.payload


def test_wrong_file_is_rejected_and_removed(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="not a valid outdoor_ot checkpoint"):
        download("outdoor_ot", tmp_path, (server.url,), stream=io.StringIO())  # a DS file is no OT file
    assert list(tmp_path.iterdir()) == []


def test_falls_back_to_the_next_mirror_and_reports_one_line(server: _Server, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    broken = server.url.replace("file.ckpt", "missing.ckpt")
    path = download("indoor_ds_new", tmp_path, (broken, server.url), stream=io.StringIO())
    assert path.exists()
    assert main(["download", "indoor_ds_new", "--dir", str(tmp_path / "x"), "--url", broken]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: could not download indoor_ds_new") and "404" in err[-1]
    assert main(["download", "outdoor_ot", "--dir", str(tmp_path / "y")]) == 2
    assert "no public mirror known" in capsys.readouterr().err


def test_default_weights_prefer_official_then_the_bundled_file_of_domain_and_device(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, fast_indoor, accurate = tmp_path / "fast.pt", tmp_path / "fast_indoor.pt", tmp_path / "accurate.pt"
    bundled = {("outdoor", "cpu"): fast, ("indoor", "cpu"): fast_indoor, ("outdoor", "cpu_bf16"): accurate,
               ("indoor", "cpu_bf16"): accurate, ("outdoor", "cuda"): accurate, ("indoor", "cuda"): accurate}
    monkeypatch.setattr(weights_module, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(weights_module, "BUNDLED", bundled)
    monkeypatch.setattr("model.matcher.cpu_has_native_bf16", lambda: False)
    with pytest.raises(CheckpointError, match="no outdoor weights found"):
        default_weights_path("outdoor")
    accurate.write_bytes(b"")
    assert default_weights_path("outdoor", "cpu") == accurate  # another bundled file rather than none
    fast.write_bytes(b"")
    assert default_weights_path("outdoor", "cpu") == fast
    assert default_weights_path("indoor", "cpu") == fast  # the indoor file is missing: the first one present
    fast_indoor.write_bytes(b"")
    assert default_weights_path("indoor", "cpu") == fast_indoor
    assert default_weights_path("indoor", "cuda") == accurate
    monkeypatch.setattr("model.matcher.cpu_has_native_bf16", lambda: True)  # the larger model is fast enough
    assert default_weights_path("outdoor", "cpu") == default_weights_path("indoor", "cpu") == accurate
    (tmp_path / "indoor_ds_new.ckpt").write_bytes(b"")
    assert default_weights_path("indoor", "cpu") == tmp_path / "indoor_ds_new.ckpt"
    monkeypatch.setattr("model.matcher.cpu_has_native_bf16", lambda: False)
    assert default_weights_path("outdoor", "cpu") == fast


@pytest.mark.parametrize("path", sorted(set(weights_module.BUNDLED.values())), ids=lambda path: path.name)
def test_bundled_weights_are_shipped_self_describing_and_small(path: Path) -> None:
    """Each bundled default is in the repository, at most 10 MB, and loads (strictly) as its preset."""
    assert path.is_file(), f"{path} is named in BUNDLED but not shipped"
    assert path.stat().st_size <= 10 * 2**20
    loaded = load_weights(path)
    assert loaded.config.name in path.name and loaded.description
