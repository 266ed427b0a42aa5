from .configuration_pin import PINConfig
from .modeling_pin import PINForImageClassification, PINOutput, PINPreTrainedModel

__all__ = ["PINConfig", "PINForImageClassification", "PINOutput", "PINPreTrainedModel"]
