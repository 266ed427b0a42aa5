"""poi_hf: POI-R facial expression recognition (Prior Inference Network + Target Recognition Network) for transformers.

Importing the package registers the models with the Auto classes::

    import poi_hf
    from transformers import AutoModelForImageClassification, pipeline

    model = AutoModelForImageClassification.from_pretrained("outputs/run/trn")
    classify = pipeline("image-classification", model="outputs/run/trn")
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
)

from .image_processing_poi import POIImageProcessor
from .pin import PINConfig, PINForImageClassification, PINOutput, PINPreTrainedModel
from .trn import TRNConfig, TRNForImageClassification, TRNOutput, TRNPreTrainedModel

__version__ = "0.1.0"

for _config, _model in ((PINConfig, PINForImageClassification), (TRNConfig, TRNForImageClassification)):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    AutoModel.register(_config, _model, exist_ok=True)
    AutoModelForImageClassification.register(_config, _model, exist_ok=True)
    AutoImageProcessor.register(_config, image_processor_classes={"pil": POIImageProcessor}, exist_ok=True)
    # Checkpoints also carry their model folder as remote code, so they load with trust_remote_code=True where
    # poi_hf is not installed (e.g. a plain transformers environment or a Space).
    _config.register_for_auto_class()
    _model.register_for_auto_class("AutoModelForImageClassification")
POIImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "PINConfig",
    "PINForImageClassification",
    "PINOutput",
    "PINPreTrainedModel",
    "POIImageProcessor",
    "TRNConfig",
    "TRNForImageClassification",
    "TRNOutput",
    "TRNPreTrainedModel",
]
