"""Reading image files into the 8-bit BGR arrays the matchers and the app's views take."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import cv2
import numpy as np


def silence_opencv_warnings() -> None:
    """Keep OpenCV's own warning lines off the terminal, where the program says what went wrong in one line (e.g.
    "[ WARN:0@1.4] ... TIFFRGBAImageOK: Sorry, can not handle images with 32-bit samples" before ``read_image``
    reads such a file another way). Setting OPENCV_LOG_LEVEL (e.g. WARNING) shows them."""
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def read_bytes(path: str | Path) -> np.ndarray | None:
    """A file's bytes as uint8 [N] for ``cv2.imdecode``, or None when it cannot be read or is empty. Python opens
    the file, not OpenCV: OpenCV's path-taking functions crash on names that are not valid UTF-8."""
    try:
        data = np.fromfile(os.fspath(path), np.uint8)
    except (OSError, ValueError):
        return None
    return data if data.size else None


def decode_file(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """``cv2.imread(path, flags)`` through ``read_bytes`` (names that are not valid UTF-8 too); None when the file
    is missing, empty or not an image."""
    data = read_bytes(path)
    return None if data is None else cv2.imdecode(data, flags)


def has_image_encoder(path: str | Path) -> bool:
    """Whether OpenCV can encode an image under this name's extension (asked by the extension alone: OpenCV
    crashes on names that are not valid UTF-8)."""
    suffix = Path(path).suffix
    return suffix.isascii() and suffix.isprintable() and len(suffix) > 1 and cv2.haveImageWriter("image" + suffix)


def write_image(path: str | Path, image: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """Encode by the name's extension and write atomically (a temporary name, then a rename): a killed process
    never leaves a truncated image. OSError names the file (a full disk says so); ValueError: no such encoder."""
    path = Path(path)
    if not has_image_encoder(path):
        raise ValueError(f"cannot write an image named {path.name}: give it an image extension such as .png")
    ok, encoded = cv2.imencode(path.suffix, image, list(params))
    if not ok:
        raise ValueError(f"OpenCV cannot encode this image as {path.suffix}")
    write_file(path, encoded.tobytes())


def write_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically (a temporary name beside it, then a rename): a killed process or a full disk
    never leaves a truncated file. OSError names the file, and says "disk full" when it is."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise write_error(path, error) from None


def make_writable_folder(folder: str | Path) -> None:
    """Create ``folder`` (and its parents) if needed and check that a file can be written in it: OSError if not
    (a read-only disk, a file in the way, no permission)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write_test_{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def write_npz(path: str | Path, compressed: bool = False, **arrays: np.ndarray) -> Path:
    """``np.savez`` (or ``savez_compressed``), written atomically as ``write_file`` does; ".npz" is added to a
    name without it, as numpy does. Returns the path written."""
    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    write_file(path, buffer.getvalue())
    return path


def write_error(path: str | Path, error: OSError) -> OSError:
    """"cannot write PATH: REASON" as an OSError that keeps the cause's errno (its text without "[Errno N]")."""
    failure = OSError(f"cannot write {path}: {describe_os_error(error)}")
    failure.errno = error.errno
    return failure


def describe_os_error(error: OSError) -> str:
    """An OSError's reason in a few words ("disk full" for ENOSPC, whose strerror says "No space left on
    device" only to those who know)."""
    return "disk full" if error.errno == errno.ENOSPC else (error.strerror or str(error))


def read_image(path: str | Path) -> np.ndarray | None:
    """The image at ``path`` as an 8-bit BGR array [H, W, 3], or None when it is missing or cannot be decoded.

    OpenCV's 8-bit colour read (EXIF orientation applied, 16 bits brought to 8, grey and alpha to BGR) is tried
    first. It refuses some files OpenCV decodes as they are, e.g. 32-bit float TIFFs (renders, HDR): those are
    read unchanged and converted by ``as_bgr_uint8``.
    """
    data = read_bytes(path)
    if data is None:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is not None:
        return image
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        return None
    try:
        return as_bgr_uint8(raw)
    except ValueError:
        return None


def as_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Any decoded image [H, W] or [H, W, C] (C = 1 grey, 2 grey + alpha, 3 BGR, 4 BGRA) -> 8-bit BGR [H, W, 3].

    Floats in [0, 1] are scaled by 255, other floats taken as 0..255 (values outside are clipped, NaN is 0);
    16-bit integers keep their 8 high bits.
    """
    if image.ndim == 3 and image.shape[2] in (1, 2):
        image = image[:, :, 0]  # grey, without its alpha
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # BGR, without its alpha
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"unsupported image shape {image.shape}")
    if np.issubdtype(image.dtype, np.floating):
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        image = np.clip(values + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)
