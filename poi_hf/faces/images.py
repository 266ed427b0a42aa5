"""Loading user images robustly: any path, PIL image or array becomes a bounded-size RGB `PIL.Image`."""

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..image_processing_poi import to_8bit

MAX_IMAGE_SIDE = 4096
"""Images whose longer side exceeds this are downscaled on load (faces stay large enough for a 112 px crop)."""

ImageInput = str | os.PathLike | Image.Image | np.ndarray


class InvalidImageError(ValueError):
    """The input cannot be read as an image (not an image file, empty, truncated, or of an unsupported type)."""


def _open(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        broken = f" (a broken link to {os.readlink(path)!r})" if path.is_symlink() and not path.exists() else ""
        raise FileNotFoundError(f"No image file at {str(path)!r}{broken}.")
    if path.stat().st_size == 0:
        raise InvalidImageError(f"{str(path)!r} is an empty file, not an image.")
    try:
        image = Image.open(path)
        image.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))  # JPEG: decode huge files at a reduced scale
        image.load()
    except UnidentifiedImageError as error:
        raise InvalidImageError(f"{str(path)!r} is not an image file PIL can read (e.g. JPEG, PNG, WebP).") from error
    except Image.DecompressionBombError as error:
        raise InvalidImageError(f"{str(path)!r} is too large to decode safely: {error}") from error
    except OSError as error:
        raise InvalidImageError(f"{str(path)!r} is a damaged or truncated image: {error}") from error
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise InvalidImageError(f"Image arrays must be uint8 (H, W), (H, W, 3) or (H, W, 4); got dtype {array.dtype}.")
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
        image: a file path, a `PIL.Image` of any mode, or a uint8 array (H, W) / (H, W, 3) RGB / (H, W, 4) RGBA.
        max_side: larger images are downscaled (aspect ratio kept); EXIF orientation is applied first.

    Raises:
        FileNotFoundError: the path does not exist.
        InvalidImageError: not an image, empty (0 bytes or 0 pixels), truncated, or an unsupported array.
    """
    if isinstance(image, (str, os.PathLike)):
        image = _open(image)
    elif isinstance(image, np.ndarray):
        image = _from_array(image)
    elif not isinstance(image, Image.Image):
        raise InvalidImageError(f"Expected a path, PIL image or numpy array, got {type(image).__name__}.")
    if image.width == 0 or image.height == 0:
        raise InvalidImageError(f"The image is empty ({image.width}x{image.height} pixels).")
    image = to_rgb(ImageOps.exif_transpose(image))  # a copy: thumbnail() below never touches the caller's image
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image
