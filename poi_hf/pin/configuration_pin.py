"""Configuration of the Prior Inference Network (PIN): backbone, facial regions, AU/emotion prior tables.

The default prior knowledge (class names, AUs, the AU-emotion table, the regions, the landmark template) is defined
here, not in `poi_hf.priors` (which re-exports it), so that this folder ships alone as remote code: a fresh
`PINConfig()` builds its tables where poi_hf is not installed.
"""

from collections.abc import Sequence

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# Copied from poi_hf.trn.configuration_trn.RESNET18_KWARGS
RESNET18_KWARGS = {
    "layer_type": "basic",
    "depths": [2, 2, 2, 2],
    "hidden_sizes": [64, 128, 256, 512],
    "embedding_size": 64,
}

CLASS_NAMES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
"""Canonical lowercase class names (FERPlus order). Loaders keep their dataset's native order."""

AU_NAMES: tuple[str, ...] = tuple(f"AU{n}" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26))
"""The 18 action units PIN reasons about: AUE-CRL's 17 plus AU14 (dimpler) for contempt."""

# Sources of the AU-emotion table (1.0 = strongly present, 0.5 = often present):
# * The AU-emotion prior table of AUE-CRL (Cui et al., ICRA 2021), AU order 1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 16, 17,
#   20, 23, 24, 25, 26. The six basic emotions and neutral follow that table.
# * Du, Tao & Martinez, "Compound facial expressions of emotion", PNAS 111(15), 2014, Table 1 (prototypical AUs of
#   the basic expressions): used as a cross-check. Where the two disagree we keep AUE-CRL; the one addition is
#   fear AU26 at 0.5 (EMFACS fear with jaw drop).
# * Contempt is not in AUE-CRL; EMFACS (Friesen & Ekman, 1983) codes it as unilateral AU12 + AU14. The table cannot
#   express "unilateral"; the mouth regions below are split left/right so that a one-sided AU14/AU12 shows up as a
#   disagreement between the two mouth branches.
EMOTION_AUS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happiness": {"AU6": 1.0, "AU12": 1.0, "AU7": 0.5, "AU25": 0.5},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU25": 1.0, "AU26": 1.0, "AU16": 0.5},
    "sadness": {"AU1": 1.0, "AU7": 1.0, "AU15": 1.0, "AU4": 0.5, "AU6": 0.5, "AU17": 0.5},
    "anger": {"AU4": 1.0, "AU5": 1.0, "AU23": 1.0, "AU24": 1.0, "AU7": 0.5, "AU17": 0.5},
    "disgust": {"AU9": 1.0, "AU10": 1.0, "AU17": 0.5, "AU25": 0.5},
    "fear": {
        "AU1": 1.0,
        "AU2": 1.0,
        "AU4": 1.0,
        "AU5": 1.0,
        "AU7": 1.0,
        "AU20": 1.0,
        "AU23": 0.5,
        "AU25": 0.5,
        "AU26": 0.5,
    },
    "contempt": {"AU12": 1.0, "AU14": 1.0},
}

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")
"""Order of the 5 landmarks everywhere in the package; "left" means image left."""

# ArcFace alignment target for a 112x112 crop, in pixels (x, y), same order as LANDMARK_NAMES.
ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def arcface_template(shrink: float = 1.0) -> list[list[float]]:
    """`ARCFACE_TEMPLATE_112` in [0, 1] coordinates of the crop, shrunk about the centre by ``shrink`` (loose crops)."""
    return [[0.5 + shrink * (x / 112.0 - 0.5), 0.5 + shrink * (y / 112.0 - 0.5)] for x, y in ARCFACE_TEMPLATE_112]


# Regions: five landmark-anchored boxes with the AUs that each can show (FACS muscle locations: Ekman, Friesen &
# Hager, FACS Manual, 2002). Centre = sum_i anchors[i] * landmark_i + offset (in units of the inter-ocular distance
# d, along the eye axis u and its downward normal v); box size (width, height) in units of d. `mirror` samples the
# crop with the x axis reversed so that left and right regions of a symmetric face give identical crops.
REGIONS: tuple[dict, ...] = (
    {
        "name": "left_eye_brow",
        "anchors": [1.0, 0.0, 0.0, 0.0, 0.0],
        "offset": [0.0, -0.2],
        "size": [0.8, 0.75],
        "mirror": False,
        "aus": ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7"],
    },
    {
        "name": "right_eye_brow",
        "anchors": [0.0, 1.0, 0.0, 0.0, 0.0],
        "offset": [0.0, -0.2],
        "size": [0.8, 0.75],
        "mirror": True,
        "aus": ["AU1", "AU2", "AU4", "AU5", "AU6", "AU7"],
    },
    {
        "name": "glabella_nose",
        "anchors": [0.35, 0.35, 0.3, 0.0, 0.0],
        "offset": [0.0, -0.15],
        "size": [0.7, 0.8],
        "mirror": False,
        "aus": ["AU1", "AU4", "AU9", "AU10"],
    },
    {
        "name": "mouth_left",
        "anchors": [0.0, 0.0, 0.0, 0.75, 0.25],
        "offset": [0.0, 0.05],
        "size": [0.75, 0.8],
        "mirror": False,
        "aus": ["AU10", "AU12", "AU14", "AU15", "AU16", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26"],
    },
    {
        "name": "mouth_right",
        "anchors": [0.0, 0.0, 0.0, 0.25, 0.75],
        "offset": [0.0, 0.05],
        "size": [0.75, 0.8],
        "mirror": True,
        "aus": ["AU10", "AU12", "AU14", "AU15", "AU16", "AU17", "AU20", "AU23", "AU24", "AU25", "AU26"],
    },
)


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """Return ``class_names`` as a list, or raise ``ValueError`` naming any name that is not canonical."""
    unknown = [name for name in class_names if name not in EMOTION_AUS]
    if unknown:
        raise ValueError(f"Unknown class name(s) {unknown}; canonical names are {list(CLASS_NAMES)}.")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"Duplicate class names in {list(class_names)}.")
    return list(class_names)


def au_prior_table(class_names: Sequence[str], au_names: Sequence[str] = AU_NAMES) -> list[list[float]]:
    """The AU-emotion prior ``P`` (C x A) for ``class_names`` in the given order, as plain lists.

    ``P[c][a]`` is 1.0 when AU ``a`` is strongly present in emotion ``c``, 0.5 when often present, else 0.0.
    """
    check_class_names(class_names)
    return [[EMOTION_AUS[name].get(au, 0.0) for au in au_names] for name in class_names]


def region_au_table(regions: Sequence[dict] = REGIONS, au_names: Sequence[str] = AU_NAMES) -> list[list[float]]:
    """The region-AU visibility ``G`` (K x A): 1.0 where region ``k`` can show AU ``a``."""
    unknown = sorted({au for region in regions for au in region["aus"]} - set(au_names))
    if unknown:
        raise ValueError(f"Regions name AUs {unknown} that are not in au_names {list(au_names)}.")
    return [[1.0 if au in region["aus"] else 0.0 for au in au_names] for region in regions]


# Fields filled from the default tables above when a config is built without them. A saved config always holds them,
# so a checkpoint describes itself, also with priors other than the defaults.
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

MEMBER_WEIGHTINGS = ("prior", "reliability")
RELIABILITY_REFERENCES = ("chance", "median")


def _canonical_class_names(num_labels: int) -> list[str]:
    if not 1 < num_labels <= len(CLASS_NAMES):
        raise ValueError(f"A PIN with default class names takes 2..{len(CLASS_NAMES)} classes, got {num_labels}.")
    return list(CLASS_NAMES[:num_labels])


# Copied from poi_hf.trn.configuration_trn.check_backbone_channels
def check_backbone_channels(config: PreTrainedConfig) -> None:
    """Raise a `ValueError` unless ``config.backbone_config`` takes the ``config.num_channels`` input channels."""
    if config.backbone_config.num_channels != config.num_channels:
        raise ValueError(
            f"backbone_config.num_channels={config.backbone_config.num_channels} but {type(config).__name__}."
            f"num_channels={config.num_channels}; they must agree."
        )


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
        member_weighting (`str`, defaults to `"prior"`): how the members are pooled into the soft label. ``"prior"``:
            a mixture weighted per emotion by the AU prior (``use_au_prior``); ``"reliability"``: a weighted geometric
            mean whose weights are the log-odds of each member's running training accuracy (``member_accuracy``, a
            saved buffer), so that measured reliability, not the table, decides whose view counts.
        reliability_momentum (`float`, defaults to 0.95): momentum of the running member accuracies, per training
            batch (with ``reliability_holdout``, per batch that holds a held-out sample, so the memory spans fewer
            measured faces: about B / N per batch).
        reliability_reference (`str`, defaults to `"chance"`): what a member's pooling weight is measured against
            with ``member_weighting="reliability"``. ``"chance"``: its log-odds over a chance-level member;
            ``"median"``: its excess over the median member's (the lower middle one for an even count), so only the
            members better than the typical one vote. The members share one backbone, so the accuracy they all have
            is common knowledge, not independent evidence; what a member adds is its excess.
        use_au_evidence (`bool`, defaults to `False`): add a member that infers the emotion from the AUs the region
            heads predict: each emotion c scores ``-sum_a KL(Bernoulli(P[c, a]) || Bernoulli(q_a))``, ``q_a`` the
            predicted probability of AU a (averaged over the regions that can show it), so the AU-emotion prior
            turns AU evidence into an emotion vote in the soft label. Needs ``member_weighting="reliability"``,
            which measures how far that vote can be trusted.
        reliability_holdout (`int`, defaults to 0): where the running member accuracies are measured in training.
            ``0``: on every training sample, after PIN has fitted its label (a member that memorises noisy labels
            then looks reliable). ``N >= 2``: every N-th training sample (``sample_index % N == 0``) is kept out of
            PIN's label losses and only those samples update the accuracies, so each member is scored on faces whose
            (noisy) labels it never fitted. The forward then needs the batch's ``sample_index``. Symmetric noise
            lowers every member's measured accuracy by the same affine map, so their order survives it. Needs
            ``member_weighting="reliability"``.
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
    member_weighting: str = "prior"
    reliability_momentum: float = 0.95
    reliability_reference: str = "chance"
    use_au_evidence: bool = False
    reliability_holdout: int = 0

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
        check_backbone_channels(self)
        self.validate_priors()
        if self.member_weighting not in MEMBER_WEIGHTINGS:
            raise ValueError(f"member_weighting must be one of {MEMBER_WEIGHTINGS}, got {self.member_weighting!r}.")
        if not 0.0 <= self.reliability_momentum < 1.0:
            raise ValueError(f"reliability_momentum must be in [0, 1), got {self.reliability_momentum}.")
        if self.reliability_reference not in RELIABILITY_REFERENCES:
            raise ValueError(
                f"reliability_reference must be one of {RELIABILITY_REFERENCES}, got {self.reliability_reference!r}."
            )
        if self.use_au_evidence and self.member_weighting != "reliability":
            raise ValueError(
                "use_au_evidence adds a member whose weight PIN must measure: set member_weighting='reliability' "
                f"(it is {self.member_weighting!r}; the 'prior' mixture has no AU-table row for such a member)."
            )
        if self.reliability_holdout < 0 or self.reliability_holdout == 1:
            raise ValueError(
                f"reliability_holdout must be 0 (off) or N >= 2 (every N-th training sample measures the members), "
                f"got {self.reliability_holdout}."
            )
        if self.reliability_holdout and self.member_weighting != "reliability":
            raise ValueError(
                "reliability_holdout measures the member accuracies that pooling uses: set "
                f"member_weighting='reliability' (it is {self.member_weighting!r})."
            )

    @property
    def num_regions(self) -> int:
        return len(self.region_names)

    @property
    def member_names(self) -> list[str]:
        """The M members pooled into the soft label, in the order of ``member_logits``: the K regions, the global
        branch, then the AU-evidence member when ``use_au_evidence``."""
        return [*self.region_names, "global"] + (["au_evidence"] if self.use_au_evidence else [])

    @property
    def num_aus(self) -> int:
        return len(self.au_names)

    def _fill_priors(self) -> None:
        """Fill missing prior fields from the default tables for the classes in ``id2label``."""
        if self.au_prior is None:
            class_names = [self.id2label[index] for index in range(self.num_labels)]
            try:
                self.au_prior = au_prior_table(class_names, self.au_names or AU_NAMES)
            except ValueError as error:
                raise ValueError(
                    f"PINConfig builds its default au_prior from the class names in id2label: {error} For other "
                    "classes pass au_prior (classes x AUs)."
                ) from error
        defaults = {
            "au_names": list(AU_NAMES),
            "region_names": [region["name"] for region in REGIONS],
            "region_anchors": [region["anchors"] for region in REGIONS],
            "region_offsets": [region["offset"] for region in REGIONS],
            "region_sizes": [region["size"] for region in REGIONS],
            "region_mirror": [region["mirror"] for region in REGIONS],
            "region_aus": region_au_table(REGIONS),
            "landmark_template": arcface_template(),
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
