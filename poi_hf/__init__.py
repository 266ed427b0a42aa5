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

from .configuration_poi import POIConfig
from .image_processing_poi import POIImageProcessor
from .modeling_poi import POIModel, POIOutput
from .pin import PINConfig, PINForImageClassification, PINOutput, PINPreTrainedModel
from .trn import TRNConfig, TRNForImageClassification, TRNOutput, TRNPreTrainedModel

from .version import __version__

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
# The joint training model (PIN + TRN) loads with AutoModel where poi_hf is installed; it is not shipped as remote code.
AutoConfig.register(POIConfig.model_type, POIConfig, exist_ok=True)
AutoModel.register(POIConfig, POIModel, exist_ok=True)

from . import pipelines  # noqa: E402,F401  registers pipeline("facial-expression-recognition")

__all__ = [
    "PINConfig",
    "PINForImageClassification",
    "PINOutput",
    "PINPreTrainedModel",
    "POIConfig",
    "POIImageProcessor",
    "POIModel",
    "POIOutput",
    "TRNConfig",
    "TRNForImageClassification",
    "TRNOutput",
    "TRNPreTrainedModel",
]
