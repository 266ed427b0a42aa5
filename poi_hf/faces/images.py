"""Loading user images robustly: any path, URL, PIL image or array becomes a bounded-size RGB `PIL.Image`."""

import io
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
from huggingface_hub import is_offline_mode
from PIL import Image, ImageOps, UnidentifiedImageError

from ..image_processing_poi import float_to_uint8, to_8bit

MAX_IMAGE_SIDE = 4096
"""Images whose longer side exceeds this are downscaled on load (faces stay large enough for a 112 px crop)."""

URL_TIMEOUT = 30.0
"""Seconds to wait for an image URL's server before giving up."""

ImageInput = str | os.PathLike | Image.Image | np.ndarray


class InvalidImageError(ValueError):
    """The input cannot be read as an image (not an image file, empty, truncated, or of an unsupported type)."""


def describe_image(image: object) -> str:
    """A short name for an image input in error messages: its path or URL, else its type and size."""
    if isinstance(image, (str, os.PathLike)):
        return repr(str(image))
    if isinstance(image, np.ndarray):
        return f"a {image.dtype} array of shape {image.shape}"
    if isinstance(image, Image.Image):
        return f"a {image.width}x{image.height} {image.mode} PIL image"
    return f"a {type(image).__name__}"


def _decode(source: str | os.PathLike | IO[bytes], name: str) -> Image.Image:
    try:
        image = Image.open(source)
        image.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))  # JPEG: decode huge files at a reduced scale
        image.load()
    except UnidentifiedImageError as error:
        raise InvalidImageError(f"{name!r} is not an image file PIL can read (e.g. JPEG, PNG, WebP).") from error
    except Image.DecompressionBombError as error:
        raise InvalidImageError(f"{name!r} is too large to decode safely: {error}") from error
    except OSError as error:
        raise InvalidImageError(f"{name!r} is a damaged or truncated image: {error}") from error
    return image


def _open(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not an image file; pass the image files in it.")
    if not path.is_file():
        broken = f" (a broken link to {os.readlink(path)!r})" if path.is_symlink() and not path.exists() else ""
        raise FileNotFoundError(f"No image file at {str(path)!r}{broken}.")
    if path.stat().st_size == 0:
        raise InvalidImageError(f"{str(path)!r} is an empty file, not an image.")
    return _decode(path, str(path))


def _download(url: str) -> Image.Image:
    # Offline mode (HF_HUB_OFFLINE=1) means no network: fail at once instead of waiting for a timeout.
    if is_offline_mode():
        raise ConnectionError(
            f"Cannot download the image {url!r}: offline mode is on (HF_HUB_OFFLINE=1) and image URLs need a network "
            "connection. Download the image and pass its file path, or unset HF_HUB_OFFLINE."
        )
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response:
            data = response.read()
    except urllib.error.HTTPError as error:
        raise FileNotFoundError(f"No image at {url!r}: the server answered {error.code} {error.reason}.") from error
    except OSError as error:  # URLError (no route, refused, DNS), timeouts, dropped connections
        reason = getattr(error, "reason", error)
        raise ConnectionError(
            f"Cannot download the image {url!r} ({reason}): image URLs need a network connection. Check it, or "
            "download the image and pass its file path."
        ) from error
    return _decode(io.BytesIO(data), url)


def _from_array(array: np.ndarray) -> Image.Image:
    if array.size == 0:
        raise InvalidImageError(f"The image array is empty (shape {array.shape}); it has no pixels.")
    if array.dtype.kind == "f":
        try:
            array = float_to_uint8(array)
        except ValueError as error:
            raise InvalidImageError(str(error)) from error
    if array.dtype != np.uint8:
        raise InvalidImageError(
            f"Image arrays must be uint8 (0..255) or float (0..1), (H, W), (H, W, 3) or (H, W, 4); got dtype "
            f"{array.dtype}."
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise InvalidImageError(f"Image arrays must be (H, W), (H, W, 3) RGB or (H, W, 4) RGBA; got {array.shape}.")
    return Image.fromarray(array)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; 16-bit and float images are scaled to 8 bit, transparent pixels are composited
    over white."""
    if image.mode == "RGB":
        return image
    image = to_8bit(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb_image(image: ImageInput, max_side: int = MAX_IMAGE_SIDE) -> Image.Image:
    """Load ``image`` as an RGB `PIL.Image` whose longer side is at most ``max_side``.

    Args:
        image: a file path, an ``http(s)://`` URL, a `PIL.Image` of any mode, or an array (H, W) / (H, W, 3) RGB /
            (H, W, 4) RGBA of uint8 (0..255) or float (0..1) pixels.
        max_side: larger images are downscaled (aspect ratio kept); EXIF orientation is applied first.

    Raises:
        FileNotFoundError: the path does not exist, or the URL's server has no such image.
        IsADirectoryError: the path is a directory.
        ConnectionError: the URL cannot be reached (no network, or offline mode).
        InvalidImageError: not an image, empty (0 bytes or 0 pixels), truncated, or an unsupported array.
    """
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        image = _download(image)
    elif isinstance(image, (str, os.PathLike)):
        image = _open(image)
    elif isinstance(image, np.ndarray):
        image = _from_array(image)
    elif not isinstance(image, Image.Image):
        raise InvalidImageError(f"Expected a path, URL, PIL image or numpy array, got {type(image).__name__}.")
    if image.width == 0 or image.height == 0:
        raise InvalidImageError(f"The image is empty ({image.width}x{image.height} pixels).")
    image = to_rgb(ImageOps.exif_transpose(image))  # a copy: thumbnail() below never touches the caller's image
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image
