"""Image processor for POI-R models: PIL backend (no torchvision), grayscale/RGBA -> RGB, resize, normalise.

It is the one record of a model's evaluation preprocessing: size, mean/std, whether inputs are turned grayscale
(models trained on grayscale data such as FER2013), and the 5-point crop template faces are aligned to
(``crop_style`` by name and ``crop_template`` coordinates). Training builds its transforms from it, and every
inference path (face pipeline, predict.py, the Space) aligns faces to its template.
"""

import numpy as np
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, PILImageResampling

HIGH_BIT_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
"""PIL modes that PIL's ``convert("RGB")`` clips to 0..255 instead of scaling (16-bit PNGs, 32-bit, float)."""


def to_8bit(image: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit integer or float grayscale image to 8-bit "L"; images of other modes are returned as is.

    "I;16*" images span 0..65535. "I" and "F" images carry no nominal range, so full scale is the smallest of
    1.0 (float only), 255 and 65535 that holds the brightest pixel, else that pixel: a float image in [0, 1], an
    8-bit image stored as "I" and a 16-bit PNG opened as "I" all come out as the photo they show.
    """
    if image.mode not in HIGH_BIT_DEPTH_MODES:
        return image
    values = np.nan_to_num(np.asarray(image, dtype=np.float64)).clip(min=0)
    if image.mode.startswith("I;16"):
        scales = (65535.0,)
    else:
        scales = ((1.0,) if image.mode == "F" else ()) + (255.0, 65535.0)
    peak = float(values.max(initial=0.0))
    full_scale = next((scale for scale in scales if peak <= scale), peak)
    return Image.fromarray((values * (255.0 / full_scale)).round().clip(0, 255).astype(np.uint8))


def float_to_uint8(array: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] (e.g. ``uint8_array / 255``) -> the uint8 pixels they stand for, so they are rescaled
    once, not twice. Raises `ValueError` for values outside [0, 1] or NaN."""
    low, high = float(array.min()), float(array.max())
    if not 0.0 <= low <= high <= 1.0:  # also False for NaN
        raise ValueError(
            f"Float image arrays must hold values in [0, 1]; got {low:g}..{high:g}. Divide 0..255 values by 255, "
            "or pass a uint8 array."
        )
    return np.rint(array.astype(np.float32) * 255).astype(np.uint8)


class POIImageProcessor(PilBackend):
    """Turns face crops into ``pixel_values`` of shape (B, 3, H, W).

    Every input is converted to RGB first, so 48x48 grayscale FER2013 crops, RGBA PNGs and 16-bit PNGs (scaled to
    8 bit by `to_8bit`) work unchanged.
    The default size is the small CPU preset's 64 px; checkpoints store their own size.
    """

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_STANDARD_MEAN
    image_std = IMAGENET_STANDARD_STD
    size = {"height": 64, "width": 64}
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_grayscale = False
    crop_style = "arcface"
    crop_template = None  # (5, 2) in [0, 1]; `poi_hf.presets.image_processor` fills it from poi_hf.priors

    def convert_to_rgb(self, image: np.ndarray, input_data_format=None) -> np.ndarray:
        """RGB as (C, H, W) uint8; with ``do_grayscale`` the ITU-R 601 luma (PIL's "L") repeated 3 times, so a
        colour photo looks like the grayscale training data. High-bit-depth PIL images are scaled to 8 bit first, float arrays
        in [0, 1] read as the 8-bit pixels they stand for."""
        if isinstance(image, Image.Image):
            image = to_8bit(image)
        elif isinstance(image, np.ndarray):
            if image.size == 0:
                raise ValueError(f"The image array is empty (shape {image.shape}); it has no pixels.")
            if image.dtype.kind == "f":
                image = float_to_uint8(image)
        rgb = super().convert_to_rgb(image, input_data_format=input_data_format)
        if not self.do_grayscale:
            return rgb
        channels_last = rgb.shape[-1] == 3 and rgb.shape[0] != 3
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        luma = (np.moveaxis(rgb, -1, 0) if channels_last else rgb).astype(np.float32)
        gray = np.tensordot(weights, luma, axes=1).round().clip(0, 255).astype(rgb.dtype)
        return np.stack([gray] * 3, axis=-1 if channels_last else 0)

    def to_dict(self) -> dict:
        output = super().to_dict()
        # transformers' image-classification pipeline also looks for an optional *video* processor; seeing this
        # processor's remote-code auto_map it would ask whether to run remote code even when poi_hf is installed.
        # Naming a video processor type (there is none) stops that lookup; the pipeline then runs without one.
        output["video_processor_type"] = "none"
        return output


__all__ = ["POIImageProcessor", "float_to_uint8", "to_8bit"]
