from .configuration_trn import TRNConfig
from .modeling_trn import TRNForImageClassification, TRNOutput, TRNPreTrainedModel

__all__ = ["TRNConfig", "TRNForImageClassification", "TRNOutput", "TRNPreTrainedModel"]
