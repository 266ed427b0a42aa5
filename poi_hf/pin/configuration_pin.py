"""Configuration of the Prior Inference Network (PIN): backbone, facial regions, AU/emotion prior tables."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

RESNET18_KWARGS = {
    "layer_type": "basic",
    "depths": [2, 2, 2, 2],
    "hidden_sizes": [64, 128, 256, 512],
    "embedding_size": 64,
}

# Fields filled from `poi_hf.priors` when a config is built without them. A saved config always holds them, so a
# checkpoint describes itself and loads (also as remote code) without poi_hf.
PRIOR_FIELDS = (
    "au_names",
    "au_prior",
    "region_names",
    "region_anchors",
    "region_offsets",
    "region_sizes",
    "region_mirror",
    "region_aus",
    "landmark_template",
)


def _canonical_class_names(num_labels: int) -> list[str]:
    try:
        from poi_hf.priors import CLASS_NAMES
    except ImportError as error:
        raise ValueError("PINConfig needs id2label, or an importable poi_hf for the default class names.") from error
    if not 1 < num_labels <= len(CLASS_NAMES):
        raise ValueError(f"A PIN with default class names takes 2..{len(CLASS_NAMES)} classes, got {num_labels}.")
    return list(CLASS_NAMES[:num_labels])


class PINConfig(PreTrainedConfig):
    r"""
    Configuration of [`PINForImageClassification`].

    Args:
        backbone_config (`dict` or `PreTrainedConfig`, *optional*):
            A transformers backbone config (default: ResNet-18-shaped `ResNetConfig`). ``out_features`` is set to
            ``[region_stage, last stage]``.
        region_stage (`str`, defaults to `"stage2"`): the stride-8 stage whose map the region crops sample.
        image_size (`int`, defaults to 112): side of the square face crop.
        num_channels (`int`, defaults to 3): channels of ``pixel_values``.
        au_names (`list[str]`): the A action units, e.g. ``["AU1", "AU2", ...]``.
        au_prior (`list[list[float]]`): ``P``, C x A, how strongly AU a shows in emotion c (rows follow ``id2label``).
        region_names (`list[str]`): the K regions.
        region_anchors (`list[list[float]]`): K x 5 landmark weights of each region centre.
        region_offsets (`list[list[float]]`): K x 2 centre offsets along the eye axis / its normal, in inter-ocular
            distances.
        region_sizes (`list[list[float]]`): K x 2 box width and height in inter-ocular distances.
        region_mirror (`list[bool]`): K flags; a mirrored region samples with its x axis reversed (right-side
            regions, so a symmetric face gives identical left and right crops).
        region_aus (`list[list[float]]`): ``G``, K x A, 1 where region k can show AU a.
        landmark_template (`list[list[float]]`): 5 x 2 fallback landmarks in [0, 1] when a batch has none.
        region_crop_size (`int`, defaults to 7): side of each region crop sampled from the stride-8 map.
        branch_channels (`int`, defaults to 128): width of each region branch.
        branch_blocks (`int`, defaults to 2): residual blocks per region branch.
        embedding_size (`int`, defaults to 128): region embedding width before the emotion and AU heads.
        temperature (`float`, defaults to 2.0): ``T`` of the tempered branch distributions that are aggregated.
        global_prior_weight (`float`, defaults to 0.3): share of the global branch in the aggregation prior.
        use_au_prior (`bool`, defaults to `True`): weigh regions per emotion by the AU prior; else uniformly.
        use_confidence_weighting (`bool`, defaults to `True`): weigh branches by 1 - normalised entropy.
    """

    model_type = "poi_pin"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="resnet", init_kwargs=RESNET18_KWARGS),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    region_stage: str = "stage2"
    image_size: int = 112
    num_channels: int = 3
    au_names: list[str] | None = None
    au_prior: list[list[float]] | None = None
    region_names: list[str] | None = None
    region_anchors: list[list[float]] | None = None
    region_offsets: list[list[float]] | None = None
    region_sizes: list[list[float]] | None = None
    region_mirror: list[bool] | None = None
    region_aus: list[list[float]] | None = None
    landmark_template: list[list[float]] | None = None
    region_crop_size: int = 7
    branch_channels: int = 128
    branch_blocks: int = 2
    embedding_size: int = 128
    temperature: float = 2.0
    global_prior_weight: float = 0.3
    use_au_prior: bool = True
    use_confidence_weighting: bool = True

    def __post_init__(self, **kwargs):
        if self.id2label is None:
            # Prior tables are keyed by emotion name, so a default PIN gets the canonical names, not LABEL_i.
            self.id2label = dict(enumerate(_canonical_class_names(kwargs.pop("num_labels", None) or 7)))
        super().__post_init__(**kwargs)
        if self.label2id is None:
            self.label2id = {name: index for index, name in self.id2label.items()}
        if any(getattr(self, field) is None for field in PRIOR_FIELDS):
            self._fill_priors()
        stages = self.backbone_config.stage_names
        if self.region_stage not in stages:
            raise ValueError(f"region_stage={self.region_stage!r} is not a backbone stage; stages are {stages}.")
        self.backbone_config.set_output_features_output_indices(
            out_features=[self.region_stage, stages[-1]], out_indices=None
        )
        self.validate_priors()

    @property
    def num_regions(self) -> int:
        return len(self.region_names)

    @property
    def num_aus(self) -> int:
        return len(self.au_names)

    def _fill_priors(self) -> None:
        """Fill missing prior fields from `poi_hf.priors` for the classes in ``id2label``."""
        try:
            from poi_hf.priors import AU_NAMES, REGIONS, au_prior_table, landmark_template, region_au_table
        except ImportError as error:
            raise ValueError(f"PINConfig needs {PRIOR_FIELDS}, or an importable poi_hf to build them.") from error
        class_names = [self.id2label[index] for index in range(self.num_labels)]
        defaults = {
            "au_names": list(AU_NAMES),
            "au_prior": au_prior_table(class_names),
            "region_names": [region["name"] for region in REGIONS],
            "region_anchors": [region["anchors"] for region in REGIONS],
            "region_offsets": [region["offset"] for region in REGIONS],
            "region_sizes": [region["size"] for region in REGIONS],
            "region_mirror": [region["mirror"] for region in REGIONS],
            "region_aus": region_au_table(REGIONS),
            "landmark_template": landmark_template("arcface"),
        }
        for field, value in defaults.items():
            if getattr(self, field) is None:
                setattr(self, field, value)

    def validate_priors(self) -> None:
        """Raise a `ValueError` when the prior tables do not match the classes, AUs or regions."""
        num_classes, num_aus, num_regions = self.num_labels, self.num_aus, self.num_regions
        expected = {
            "au_prior": (num_classes, num_aus),
            "region_anchors": (num_regions, 5),
            "region_offsets": (num_regions, 2),
            "region_sizes": (num_regions, 2),
            "region_aus": (num_regions, num_aus),
            "landmark_template": (5, 2),
        }
        for field, (rows, cols) in expected.items():
            table = getattr(self, field)
            if len(table) != rows or any(len(row) != cols for row in table):
                raise ValueError(
                    f"PINConfig.{field} must be {rows} x {cols} (classes={num_classes}, AUs={num_aus}, "
                    f"regions={num_regions}), got {len(table)} rows of lengths {sorted({len(row) for row in table})}."
                )
        if len(self.region_mirror) != num_regions:
            raise ValueError(f"region_mirror has {len(self.region_mirror)} flags for {num_regions} regions.")
        if num_regions == 0:
            raise ValueError("PINConfig needs at least one region.")


__all__ = ["PINConfig"]
