"""poi_hf: POI-R facial expression recognition models for Hugging Face transformers."""

__version__ = "0.1.0"
