"""Image processor for POI-R models: PIL backend (no torchvision), grayscale/RGBA -> RGB, resize, normalise."""

from transformers.image_processing_backends import PilBackend
from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, PILImageResampling


class POIImageProcessor(PilBackend):
    """Turns face crops into ``pixel_values`` of shape (B, 3, H, W).

    Every input is converted to RGB first, so 48x48 grayscale FER2013 crops and RGBA PNGs work unchanged.
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

    def to_dict(self) -> dict:
        output = super().to_dict()
        # transformers' image-classification pipeline also looks for an optional *video* processor; seeing this
        # processor's remote-code auto_map it would ask whether to run remote code even when poi_hf is installed.
        # Naming a video processor type (there is none) stops that lookup; the pipeline then runs without one.
        output["video_processor_type"] = "none"
        return output


__all__ = ["POIImageProcessor"]
