"""Prior Inference Network (PIN): key facial regions + AU/emotion priors -> an objective emotion distribution.

Pipeline (B batch, C classes, K regions, A AUs, S crop side):

1. A backbone gives a stride-8 map (regions) and its last map (global branch).
2. Each region box is placed from the 5 landmarks in a frame aligned with the eye axis and sampled from the stride-8
   map with one `grid_sample` call (differentiable; boxes of all regions are stacked along the grid's height).
3. K region branches (grouped convolutions, one group per region) -> embedding -> emotion logits (C) and AU logits (A).
4. The soft label pools the K regions and the global branch (the members). ``member_weighting="prior"``:
   ``s = normalise(sum_k w_k * softmax(z_k / T))``, ``w_k,c`` = prior relevance of member k for emotion c (from ``P``
   and ``G``) x confidence of k (1 - entropy). ``"reliability"``: ``s = normalise(prod_k softmax(z_k / T) ** w_k)``,
   ``w_k`` = log-odds of member k's running training accuracy over chance x its confidence, normalised over members.
   ``use_au_evidence`` adds a member that scores each emotion by how well its AU-prior row matches the AUs the
   region heads predict (`au_evidence_logits`).
"""

import inspect
import math
from dataclasses import dataclass
from typing import Unpack

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AutoBackbone, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, TransformersKwargs, logging

from .configuration_pin import PINConfig

logger = logging.get_logger(__name__)


LANDMARK_RANGE = (-0.5, 1.5)
"""Landmark coordinates PIN accepts: [0, 1] of the image plus a margin, because augmentation (rotation, zoom, shift)
can move points of a tight crop a little outside it. Anything beyond is pixel coordinates or garbage."""


@dataclass
class PINOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): mean cross-entropy of all branches on ``labels``.
        logits (`torch.FloatTensor` of shape `(B, C)`): log of ``soft_labels``, so ``softmax(logits) == soft_labels``.
        soft_labels (`torch.FloatTensor` of shape `(B, C)`): the aggregated, prior- and confidence-weighted
            emotion distribution.
        region_logits (`torch.FloatTensor` of shape `(B, K, C)`): emotion logits of each region branch.
        global_logits (`torch.FloatTensor` of shape `(B, C)`): emotion logits of the global branch.
        au_logits (`torch.FloatTensor` of shape `(B, K, A)`): AU logits of each region branch (only the AUs in
            ``config.region_aus`` of a region are trained).
        member_logits (`torch.FloatTensor` of shape `(B, M, C)`): emotion logits of the M members pooled into
            ``soft_labels``, in the order of ``config.member_names``: the K regions, the global branch, then the
            AU-evidence member (``config.use_au_evidence``).
        region_weights (`torch.FloatTensor` of shape `(B, M, C)`): aggregation weights ``w`` normalised over the
            M members.
        region_contributions (`torch.FloatTensor` of shape `(B, M, C)`): share of each member in ``s_c``
            (sums to 1 over members); what the demo shows as "which regions drove PIN's view".
        region_boxes (`torch.FloatTensor` of shape `(B, K, 4, 2)`): corners of each region box in [0, 1] image
            coordinates (x, y), order top-left, top-right, bottom-right, bottom-left of the region frame.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    soft_labels: torch.FloatTensor | None = None
    region_logits: torch.FloatTensor | None = None
    global_logits: torch.FloatTensor | None = None
    au_logits: torch.FloatTensor | None = None
    member_logits: torch.FloatTensor | None = None
    region_weights: torch.FloatTensor | None = None
    region_contributions: torch.FloatTensor | None = None
    region_boxes: torch.FloatTensor | None = None


# Model folders are self-contained for remote code, so PIN carries copies of TRN's input checks.
# Copied from poi_hf.trn.modeling_trn.check_pixel_values
def check_pixel_values(pixel_values: torch.Tensor, num_channels: int, image_size: int) -> None:
    """Raise a `ValueError` unless ``pixel_values`` is a non-empty floating-point (B, num_channels, H, W) tensor; warn
    once per size when H x W is not the ``image_size`` the model was trained on (the model runs at any size)."""
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"pixel_values must be a floating-point tensor of normalised pixels, got {pixel_values.dtype}. Raw 0..255 "
            "images should go through the model's image processor, which rescales and normalises them."
        )
    if pixel_values.ndim != 4 or pixel_values.shape[1] != num_channels:
        raise ValueError(
            f"pixel_values must have shape (batch, {num_channels}, height, width), got {tuple(pixel_values.shape)}. "
            "Grayscale or RGBA images should go through the image processor, which converts them to RGB."
        )
    height, width = pixel_values.shape[2:]
    if height == 0 or width == 0:
        raise ValueError(f"pixel_values are empty ({height}x{width} pixels); expected {image_size}x{image_size}.")
    if (height, width) != (image_size, image_size):
        logger.warning_once(
            f"pixel_values are {height}x{width} but this model was trained on {image_size}x{image_size} images "
            "(config.image_size); predictions at other sizes are less reliable. Resize with the model's image "
            "processor."
        )


# Copied from poi_hf.trn.modeling_trn.check_labels
def check_labels(labels: torch.Tensor, num_labels: int) -> None:
    """Raise a `ValueError` unless ``labels`` are class indices in [0, num_labels)."""
    if labels.ndim != 1 or labels.dtype.is_floating_point:
        raise ValueError(
            f"labels must be a 1-D integer tensor of class indices, got {labels.dtype} {tuple(labels.shape)}."
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_labels):
        bad = labels[(labels < 0) | (labels >= num_labels)].unique().tolist()
        raise ValueError(f"labels {bad} are outside the {num_labels} classes [0, {num_labels - 1}].")


# Copied from poi_hf.trn.modeling_trn.check_forward_kwargs
def check_forward_kwargs(model: nn.Module, kwargs: dict) -> None:
    """Raise a `TypeError` for a keyword argument that ``model.forward`` neither names nor takes from transformers'
    common forward arguments (`TransformersKwargs`, e.g. the Trainer's ``num_items_in_batch``; accepted and unused),
    so that a typo such as ``landmark=`` fails instead of being ignored."""
    unknown = sorted(set(kwargs) - set(TransformersKwargs.__annotations__))
    if unknown:
        named = [name for name in inspect.signature(model.forward).parameters if name != "kwargs"]
        raise TypeError(
            f"{type(model).__name__}.forward() got unexpected keyword argument(s) {unknown}; it takes {named} and "
            f"transformers' {sorted(TransformersKwargs.__annotations__)}."
        )


def region_frames(
    landmarks: torch.Tensor,
    anchors: torch.Tensor,
    offsets: torch.Tensor,
    sizes: torch.Tensor,
    mirror: torch.Tensor,
    image_size: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Place each region box in an eye-aligned frame.

    Args:
        landmarks: (B, 5, 2) in [0, 1] image coordinates (x, y).
        anchors: (K, 5) landmark weights of each centre; offsets: (K, 2) and sizes: (K, 2) in inter-ocular
            distances along (eye axis u, its downward normal v); mirror: (K,) bool.
        image_size: (height, width) of the image the landmarks refer to.

    Returns:
        centres (B, K, 2), x axes (B, K, 2) and y axes (B, K, 2), in pixels; the axes are half box extents, the x axis
        reversed for mirrored regions.
    """
    height, width = image_size
    points = landmarks * landmarks.new_tensor([width, height])
    eye_vector = points[:, 1] - points[:, 0]
    distance = eye_vector.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, 1)
    u = eye_vector / distance
    v = torch.stack([-u[:, 1], u[:, 0]], dim=-1)  # u rotated by +90 degrees: "down" in image coordinates
    d = distance[:, None]  # (B, 1, 1)
    centres = torch.einsum("ki,bij->bkj", anchors, points)
    centres = centres + d * (offsets[None, :, :1] * u[:, None] + offsets[None, :, 1:] * v[:, None])
    sign = 1.0 - 2.0 * mirror.to(landmarks.dtype)  # (K,)
    x_axes = 0.5 * d * sizes[None, :, :1] * sign[None, :, None] * u[:, None]
    y_axes = 0.5 * d * sizes[None, :, 1:] * v[:, None]
    return centres, x_axes, y_axes


def crop_regions(
    feature_map: torch.Tensor,
    centres: torch.Tensor,
    x_axes: torch.Tensor,
    y_axes: torch.Tensor,
    image_size: tuple[int, int],
    crop_size: int,
) -> torch.Tensor:
    """Bilinearly sample a ``crop_size``-square crop of every region from ``feature_map`` in one `grid_sample` call.

    Args:
        feature_map: (B, F, h, w) covering the same field of view as the image.
        centres, x_axes, y_axes: (B, K, 2) region frames in image pixels (see `region_frames`).
        image_size: (height, width) of the image.

    Returns:
        (B, K, F, crop_size, crop_size).
    """
    batch, num_regions = centres.shape[:2]
    height, width = image_size
    scale = centres.new_tensor([2.0 / width, 2.0 / height])
    # affine_grid's theta maps output coordinates in [-1, 1]^2 to input coordinates in [-1, 1]^2.
    theta = torch.stack([x_axes * scale, y_axes * scale, centres * scale - 1.0], dim=-1)  # (B, K, 2, 3)
    grid = F.affine_grid(
        theta.reshape(batch * num_regions, 2, 3), [batch * num_regions, 1, crop_size, crop_size], align_corners=False
    )
    grid = grid.reshape(batch, num_regions * crop_size, crop_size, 2)
    crops = F.grid_sample(
        feature_map, grid.to(feature_map.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return crops.reshape(batch, -1, num_regions, crop_size, crop_size).transpose(1, 2)


def region_mean_au_probabilities(au_logits: torch.Tensor, region_aus: torch.Tensor) -> torch.Tensor:
    """(B, K, A) region AU logits -> (B, A): each AU's mean predicted probability over the regions that can show it
    (``region_aus`` (K, A) ``G`` in {0, 1}); 0 for an AU no region shows."""
    shown = region_aus.sum(0)  # (A,) regions that can show each AU
    return (torch.sigmoid(au_logits.float()) * region_aus).sum(1) / shown.clamp_min(1.0)


def au_evidence_logits(au_logits: torch.Tensor, au_prior: torch.Tensor, region_aus: torch.Tensor) -> torch.Tensor:
    """Emotion logits from predicted AUs: ``l_c = -sum_a KL(Bernoulli(P[c, a]) || Bernoulli(q_a))``.

    ``q_a`` is the mean predicted probability of AU a over the regions that can show it (``G``); AUs no region shows
    are left out. The emotion whose prior AU pattern the predicted AUs match best scores highest (0 for an exact
    match), and the AU heads get emotion gradients only through the prior table.

    Args:
        au_logits: (B, K, A) region AU logits.
        au_prior: (C, A) ``P`` in [0, 1]; region_aus: (K, A) ``G`` in {0, 1}.

    Returns:
        (B, C) logits.
    """
    shown = region_aus.sum(0)  # (A,) regions that can show each AU
    q = region_mean_au_probabilities(au_logits, region_aus).clamp(1e-4, 1.0 - 1e-4)
    present = au_prior * (shown > 0)  # (C, A): P, with AUs no region shows masked out
    absent = (1.0 - au_prior) * (shown > 0)
    negative_entropy = (torch.xlogy(present, au_prior) + torch.xlogy(absent, 1.0 - au_prior)).sum(-1)  # (C,)
    return q.log() @ present.T + torch.log1p(-q) @ absent.T - negative_entropy


class RegionLinear(nn.Module):
    """K independent linear layers applied at once: (B, K, I) -> (B, K, O)."""

    def __init__(self, num_regions: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_regions, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_regions, out_features))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bki,kio->bko", inputs, self.weight) + self.bias


class GroupedResidualBlock(nn.Module):
    """Basic residual block whose convolutions keep the K regions apart (groups=K)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, groups=groups, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, groups=groups, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        residual = F.relu(self.norm1(self.conv1(hidden)))
        return F.relu(hidden + self.norm2(self.conv2(residual)))


class RegionBranches(nn.Module):
    """Per-region branch: 1x1 projection -> residual blocks -> pool -> embedding -> emotion and AU heads."""

    def __init__(self, config: PINConfig, in_channels: int):
        super().__init__()
        regions, width = config.num_regions, config.branch_channels
        self.project = nn.Sequential(
            nn.Conv2d(regions * in_channels, regions * width, 1, groups=regions, bias=False),
            nn.BatchNorm2d(regions * width),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(
            *[GroupedResidualBlock(regions * width, regions) for _ in range(config.branch_blocks)]
        )
        self.embedding = RegionLinear(regions, width, config.embedding_size)
        self.emotion_head = RegionLinear(regions, config.embedding_size, config.num_labels)
        self.au_head = RegionLinear(regions, config.embedding_size, config.num_aus)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, F, S, S) -> emotion logits (B, K, C), AU logits (B, K, A)."""
        batch, regions = crops.shape[:2]
        hidden = self.blocks(self.project(crops.flatten(1, 2)))
        pooled = hidden.mean(dim=(2, 3)).reshape(batch, regions, -1)
        embedding = F.relu(self.embedding(pooled))
        return self.emotion_head(embedding), self.au_head(embedding)


class PriorTables(nn.Module):
    """Constants derived from the config, as buffers that follow the model's device.

    Not saved with the weights (``persistent=False``): a checkpoint's tables are its config's, and
    `PINPreTrainedModel._init_weights` recomputes them after loading.
    """

    def __init__(self, config: PINConfig):
        super().__init__()
        for name, value in self.compute(config).items():
            self.register_buffer(name, value, persistent=False)

    @staticmethod
    def compute(config: PINConfig) -> dict[str, torch.Tensor]:
        """au_prior (C, A), region_aus (K, A), region anchors/offsets/sizes/mirror, landmark_template (5, 2) and
        member_prior (K + 1, C): the prior relevance of each region (from ``G P^T``) and of the global branch for
        each emotion. A class with no AUs (neutral), or ``use_au_prior=False``, gives the regions equal shares."""
        tables = {
            name: torch.tensor(getattr(config, name), dtype=torch.float32)
            for name in (
                "au_prior",
                "region_aus",
                "region_anchors",
                "region_offsets",
                "region_sizes",
                "landmark_template",
            )
        }
        tables["region_mirror"] = torch.tensor(config.region_mirror, dtype=torch.bool)
        regions = config.num_regions
        if config.use_au_prior:
            overlap = tables["region_aus"] @ tables["au_prior"].T + 1e-3  # (K, C)
            relevance = overlap / overlap.sum(dim=0, keepdim=True)
        else:
            relevance = torch.full((regions, config.num_labels), 1.0 / regions)
        global_share = torch.full((1, config.num_labels), config.global_prior_weight)
        tables["member_prior"] = torch.cat([(1.0 - config.global_prior_weight) * relevance, global_share])
        return tables


class PINPreTrainedModel(PreTrainedModel):
    config: PINConfig
    config_class = PINConfig
    base_model_prefix = "pin"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RegionLinear):
            # Same bounds as nn.Linear's default initialisation, per region.
            bound = 1.0 / math.sqrt(module.weight.shape[1])
            init.uniform_(module.weight, -bound, bound)
            init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, PriorTables):
            for name, value in module.compute(self.config).items():
                init.copy_(getattr(module, name), value)


class PINForImageClassification(PINPreTrainedModel):
    """PIN: region + global branches whose emotion distributions are aggregated into ``soft_labels``."""

    def __init__(self, config: PINConfig):
        super().__init__(config)
        self.backbone = AutoBackbone.from_config(config.backbone_config)
        region_channels, global_channels = self.backbone.channels
        self.region_branches = RegionBranches(config, region_channels)
        self.global_head = nn.Linear(global_channels, config.num_labels)

        self.priors = PriorTables(config)
        # Running training accuracy of each member (config.member_names), starting at chance. Saved only where it is
        # used, so checkpoints of prior-weighted PINs keep their keys.
        self.register_buffer(
            "member_accuracy",
            torch.full((len(config.member_names),), 1.0 / config.num_labels),
            persistent=config.member_weighting == "reliability",
        )
        self.post_init()

    def holdout_mask(self, sample_index: torch.Tensor | None) -> torch.Tensor | None:
        """(B,) True for the training samples kept out of PIN's label losses to measure its members
        (``config.reliability_holdout``); None when every sample trains PIN.

        Args:
            sample_index: (B,) the samples' row numbers in the training set (the batch's ``sample_index``).
        """
        folds = self.config.reliability_holdout
        if not folds:
            return None
        if sample_index is None:
            raise ValueError(
                f"reliability_holdout={folds} keeps every {folds}-th training sample out of PIN's label losses, which "
                "needs each sample's row number: pass sample_index (the batch's 'sample_index', which the collator "
                "fills from an 'index' column: train.add_column('index', range(len(train))))."
            )
        return sample_index.to(self.member_accuracy.device) % folds == 0

    @torch.no_grad()
    def update_member_accuracy(
        self, member_logits: torch.Tensor, labels: torch.Tensor, measured: torch.Tensor | None = None
    ) -> None:
        """Move the running member accuracies toward this batch's (call in training, with the training labels).

        Noisy labels lower every member's measured accuracy alike (symmetric noise scales them by the same factor),
        so the members' order, which the weights follow, survives them.

        Args:
            member_logits: (B, M, C) the members' logits (``PINOutput.member_logits``).
            labels: (B,) class indices.
            measured: (B,) bool, the samples to measure on (`holdout_mask`); None: all. A batch without one leaves
                the accuracies as they are.
        """
        if measured is not None:
            if not bool(measured.any()):
                return
            member_logits, labels = member_logits[measured], labels[measured]
        correct = (member_logits.argmax(-1) == labels.unsqueeze(1)).float().mean(0)
        self.member_accuracy.lerp_(correct, 1.0 - self.config.reliability_momentum)

    def measure_members(
        self, member_logits: torch.Tensor, labels: torch.Tensor, sample_index: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The training step's bookkeeping of reliability pooling, shared by PIN's own loss and the joint POI-R loss:
        in training, the samples `holdout_mask` keeps out of PIN's label losses, with the running member accuracies
        moved on them (``member_weighting="reliability"``); outside training nothing is measured.

        Args:
            member_logits: (B, M, C) the members' logits; labels: (B,) class indices; sample_index: (B,) row numbers.

        Returns:
            (B,) bool, True for the held-out samples, or None when every sample trains PIN.
        """
        if not self.training:
            return None
        held_out = self.holdout_mask(sample_index)
        if self.config.member_weighting == "reliability":
            self.update_member_accuracy(member_logits, labels, held_out)
        return held_out

    def member_reliability(self) -> torch.Tensor:
        """(M,) log-odds of each member's running accuracy over a chance-level member's (≥ 0): the weight of an
        independent voter of that accuracy in an optimal weighted vote among C classes."""
        classes = self.config.num_labels
        accuracy = self.member_accuracy.clamp(1.0 / classes, 1.0 - 1e-3)
        return (accuracy / (1.0 - accuracy) * (classes - 1)).log().clamp_min(1e-3)

    def _landmarks_or_template(self, landmarks: torch.Tensor | None, batch: int) -> torch.Tensor:
        if landmarks is None:
            return self.priors.landmark_template.expand(batch, 5, 2)
        if landmarks.shape != (batch, 5, 2):
            raise ValueError(
                f"landmarks must have shape ({batch}, 5, 2) (batch, 5 points, x/y in [0, 1]), got {tuple(landmarks.shape)}."
            )
        low, high = LANDMARK_RANGE
        inside = (landmarks >= low) & (landmarks <= high)  # False for NaN
        if not bool(inside.all()):
            samples = (~inside).flatten(1).any(dim=1).nonzero().flatten().tolist()
            raise ValueError(
                f"landmarks must be (x, y) in [0, 1] coordinates of pixel_values (accepted: {low}..{high}), not pixels "
                f"and not NaN; sample(s) {samples[:8]} have {landmarks[~inside][:8].tolist()}. Divide pixel "
                "coordinates by the image width and height."
            )
        return landmarks.to(self.priors.landmark_template.dtype)

    def aggregate(self, member_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Combine tempered member distributions into the soft label.

        Args:
            member_logits: (B, M, C) the members' logits (``PINOutput.member_logits``).

        Returns:
            soft labels (B, C), weights normalised over members (B, M, C), contributions (B, M, C).
        """
        log_probs = F.log_softmax(member_logits.float() / self.config.temperature, dim=-1)
        probs = log_probs.exp()
        if self.config.member_weighting == "reliability":
            reliability = self.member_reliability()
            if self.config.reliability_reference == "median":  # only the excess over the typical member votes
                reliability = (reliability - reliability.median()).clamp_min(1e-3)
            weights = reliability[:, None].expand_as(probs)
        else:
            weights = self.priors.member_prior.expand_as(probs)
        if self.config.use_confidence_weighting:
            entropy = -(probs * log_probs).sum(-1, keepdim=True)
            confidence = (1.0 - entropy / math.log(probs.shape[-1])).clamp_min(1e-4)
            weights = weights * confidence
        region_weights = weights / weights.sum(dim=1, keepdim=True)
        weighted = weights * probs
        mass = weighted.sum(dim=1)  # (B, C)
        if self.config.member_weighting == "reliability":
            soft_labels = F.softmax((region_weights * log_probs).sum(dim=1), dim=-1)
        else:
            soft_labels = mass / mass.sum(dim=-1, keepdim=True)
        contributions = weighted / mass.unsqueeze(1)  # each member's share of the weighted vote for c
        return soft_labels, region_weights, contributions

    def forward(
        self,
        pixel_values: torch.Tensor,
        landmarks: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        sample_index: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> PINOutput | tuple:
        """
        Args:
            pixel_values: (B, 3, H, W) normalised images.
            landmarks: (B, 5, 2) in [0, 1] coordinates of ``pixel_values``; the config's template when omitted.
                Values outside `LANDMARK_RANGE` (-0.5..1.5) or NaN raise a `ValueError`.
            labels: (B,) class indices, optional; when given, ``loss`` is the mean cross-entropy of all branches
                (in training, over the samples `holdout_mask` does not keep out).
            sample_index: (B,) row numbers in the training set; needed in training with ``config.reliability_holdout``.
            return_dict: return a `PINOutput` (default: ``config.return_dict``) or a tuple.
            kwargs: transformers' common forward arguments (e.g. the Trainer's ``num_items_in_batch``), accepted and
                unused; any other name (e.g. ``landmark=``) raises a `TypeError`.

        Returns:
            `PINOutput` (see its fields for shapes).
        """
        check_forward_kwargs(self, kwargs)
        check_pixel_values(pixel_values, self.config.num_channels, self.config.image_size)
        pixel_values = pixel_values.to(self.dtype)  # e.g. float64 arrays, or a half-precision model
        batch, _, height, width = pixel_values.shape
        landmarks = self._landmarks_or_template(landmarks, batch)
        region_map, global_map = self.backbone(pixel_values).feature_maps

        frames = region_frames(
            landmarks,
            self.priors.region_anchors,
            self.priors.region_offsets,
            self.priors.region_sizes,
            self.priors.region_mirror,
            (height, width),
        )
        crops = crop_regions(region_map, *frames, (height, width), self.config.region_crop_size)
        region_logits, au_logits = self.region_branches(crops)
        global_logits = self.global_head(global_map.mean(dim=(2, 3)))

        members = [region_logits, global_logits.unsqueeze(1)]
        if self.config.use_au_evidence:
            members.append(au_evidence_logits(au_logits, self.priors.au_prior, self.priors.region_aus).unsqueeze(1))
        member_logits = torch.cat(members, dim=1)
        soft_labels, region_weights, contributions = self.aggregate(member_logits)

        centres, x_axes, y_axes = frames
        corner_signs = centres.new_tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]])  # (4, 2)
        corners = (
            centres.unsqueeze(2) + corner_signs[:, :1] * x_axes.unsqueeze(2) + corner_signs[:, 1:] * y_axes.unsqueeze(2)
        )
        region_boxes = corners / corners.new_tensor([width, height])

        loss = None
        if labels is not None:
            check_labels(labels, self.config.num_labels)
            held_out = self.measure_members(member_logits, labels, sample_index)
            members = member_logits.shape[1]
            per_sample = F.cross_entropy(
                member_logits.transpose(1, 2), labels[:, None].expand(-1, members), reduction="none"
            ).mean(1)
            if held_out is not None:
                per_sample = per_sample[~held_out]
            loss = per_sample.sum() / max(per_sample.numel(), 1)  # 0 for a batch that is all held out

        output = PINOutput(
            loss=loss,
            logits=soft_labels.clamp_min(1e-12).log(),
            soft_labels=soft_labels,
            region_logits=region_logits,
            global_logits=global_logits,
            au_logits=au_logits,
            member_logits=member_logits,
            region_weights=region_weights,
            region_contributions=contributions,
            region_boxes=region_boxes,
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


__all__ = ["PINForImageClassification", "PINOutput", "PINPreTrainedModel", "crop_regions", "region_frames"]
