"""SynFER as a ``datasets.DatasetDict``: configuration, generation by split, on-disk cache."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, Image, List, Value, load_from_disk
from PIL import Image as PILImage

from ...priors import AU_NAMES, CLASS_NAMES, check_class_names
from .geometry import face_geometry, landmarks, sample_identities, sample_scenes, take
from ..noise import flip_labels
from .labels import majority, sample_annotator_pool, sample_aus, sample_true_distributions, sample_votes
from .render import render_faces

VERSION = 1
"""Bumped whenever the same config would generate different data; part of the cache key."""

SPLITS = ("train", "validation", "test")
LABEL_MODES = ("subjective", "majority", "clean")
DEFAULT_DIFFICULTY = 0.4  # calibrated: docs/synfer.md
# Random streams: one per split (index 0..2) and one for the annotator pool; label noise draws from its own
# (``flip_labels``), so neither the label mode nor the noise rate ever changes the images.
_ANNOTATOR_STREAM = 3


@dataclasses.dataclass
class SynFERConfig:
    """Every parameter that determines a SynFER dataset (all of them form the cache key).

    Args:
        num_train, num_validation, num_test: samples per split; splits have disjoint identities; an empty split
            is left out of the DatasetDict.
        image_size: output height = width in pixels (>= 32).
        num_classes: 7 (basic emotions + neutral) or 8 (+ contempt); classes are ``CLASS_NAMES[:num_classes]``.
        class_names: optional canonical class names (any subset and order); overrides ``num_classes``.
        label_mode: the training ``label``: ``"subjective"`` (one annotator's vote), ``"majority"`` (majority
            vote, ties broken at random) or ``"clean"`` (argmax of the true distribution).
        noise_rate: fraction of train labels flipped to a uniformly random other class, in [0, 1).
        seed: everything is a deterministic function of the config; same seed -> byte-identical images.
        difficulty: in [0, 1]; spreads expression intensity, AU noise, blends and nuisances (pose, light, blur,
            sensor noise, occluders). The default is calibrated in docs/synfer.md.
        num_votes: annotators per sample (FERPlus has 10).
        num_annotators: size of the annotator pool.
        samples_per_identity: images per identity (expression and scene vary between them).
    """

    num_train: int = 5000
    num_validation: int = 500
    num_test: int = 1000
    image_size: int = 64
    num_classes: int = 7
    class_names: Optional[Sequence[str]] = None
    label_mode: str = "subjective"
    noise_rate: float = 0.0
    seed: int = 0
    difficulty: float = DEFAULT_DIFFICULTY
    num_votes: int = 10
    num_annotators: int = 40
    samples_per_identity: int = 8

    def __post_init__(self):
        if self.class_names is None:
            if self.num_classes not in (7, 8):
                raise ValueError(f"num_classes must be 7 or 8 (or pass class_names), got {self.num_classes}.")
            self.class_names = CLASS_NAMES[: self.num_classes]
        self.class_names = tuple(check_class_names(self.class_names))
        self.num_classes = len(self.class_names)
        if self.num_classes < 2:
            raise ValueError(f"SynFER needs at least 2 classes, got {list(self.class_names)}.")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels, got {self.image_size}.")
        if self.label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {self.label_mode!r}.")
        if not 0.0 <= self.noise_rate < 1.0:
            raise ValueError(f"noise_rate must be in [0, 1), got {self.noise_rate}.")
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {self.difficulty}.")
        if min(self.num_train, self.num_validation, self.num_test) < 0:
            raise ValueError("Split sizes must be >= 0.")
        if not 1 <= self.num_votes <= self.num_annotators:
            raise ValueError(f"Need 1 <= num_votes <= num_annotators, got {self.num_votes} and {self.num_annotators}.")
        if self.samples_per_identity < 1:
            raise ValueError(f"samples_per_identity must be >= 1, got {self.samples_per_identity}.")

    def split_size(self, split: str) -> int:
        return getattr(self, f"num_{split}")

    def num_identities(self, split: str) -> int:
        return math.ceil(self.split_size(split) / self.samples_per_identity)

    def cache_key(self) -> str:
        text = json.dumps({"version": VERSION, **dataclasses.asdict(self)}, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_chunk_size(image_size: int) -> int:
    """Samples rendered at once: ~256k pixels per chunk (cache-friendly). Fixed by the image size, so the chunking
    (and the noise stream of each chunk) is part of the config and generation stays deterministic."""
    return max(8, 2**18 // image_size**2)


def generate_split(config: SynFERConfig, split: str) -> dict[str, np.ndarray]:
    """All columns of one split as arrays (n = the split's size, C classes, A = 18 AUs).

    Returns:
        image (n, S, S, 3) uint8; landmarks (n, 5, 2) float32 in [0, 1] image coordinates; aus (n, A) float32, the
        stronger side of each AU; true_distribution (n, C) float32; votes (n, C) int; subjective, majority,
        clean_label, identity (n,) int.
    """
    n, size = config.split_size(split), config.image_size
    faces_seed, labels_seed, render_seed = np.random.SeedSequence([config.seed, SPLITS.index(split)]).spawn(3)
    rng = np.random.default_rng(faces_seed)
    num_ids = config.num_identities(split)
    identities = sample_identities(rng, num_ids)
    identity = rng.permutation(np.arange(n) % max(num_ids, 1))
    scenes = sample_scenes(rng, n, config.difficulty)
    dist = sample_true_distributions(rng, n, config.class_names, config.difficulty)
    aus = sample_aus(rng, dist, config.class_names, config.difficulty)
    faces = take(identities, identity)
    geo = face_geometry(faces, scenes, aus)

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    chunk = render_chunk_size(size)
    starts = range(0, n, chunk)
    for start, seed in zip(starts, render_seed.spawn(len(starts))):
        rows = slice(start, start + chunk)
        images[rows], _ = render_faces(
            take(faces, rows), take(scenes, rows), take(geo, rows), size, np.random.default_rng(seed)
        )

    pool = sample_annotator_pool(
        np.random.default_rng([config.seed, _ANNOTATOR_STREAM]), config.class_names, config.num_annotators
    )
    label_rng = np.random.default_rng(labels_seed)
    votes, subjective = sample_votes(label_rng, pool, dist, config.num_votes)
    offset = sum(config.num_identities(s) for s in SPLITS[: SPLITS.index(split)])
    return {
        "image": images,
        "landmarks": landmarks(geo, scenes),
        "aus": aus.max(1),
        "true_distribution": dist,
        "votes": votes,
        "subjective": subjective,
        "majority": majority(label_rng, votes),
        "clean_label": dist.argmax(1),
        "identity": identity + offset,
    }


def synfer_features(class_names: Sequence[str]) -> Features:
    labels = ClassLabel(names=list(class_names))
    return Features(
        {
            "image": Image(),
            "label": labels,
            "clean_label": labels,
            "true_distribution": List(Value("float32"), length=len(class_names)),
            "votes": List(Value("int32"), length=len(class_names)),
            "landmarks": List(List(Value("float32"), length=2), length=5),
            "aus": List(Value("float32"), length=len(AU_NAMES)),
            "identity": Value("int32"),
        }
    )


def _png(image: np.ndarray) -> dict:
    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": None}


def build_synfer(config: SynFERConfig) -> DatasetDict:
    """Generate SynFER in memory (no cache). ``load_synfer`` is the cached entry point."""
    features = synfer_features(config.class_names)
    splits = {}
    for split in (s for s in SPLITS if config.split_size(s) > 0):  # datasets cannot reload empty splits
        arrays = generate_split(config, split)
        annotated = arrays["clean_label" if config.label_mode == "clean" else config.label_mode]
        label = annotated
        if split == "train" and config.noise_rate > 0:
            label = flip_labels(annotated, config.num_classes, config.noise_rate, "symmetric", seed=config.seed)
        n = max(len(label), 1)
        description = {
            "name": "SynFER",
            "version": VERSION,
            "split": split,
            "config": dataclasses.asdict(config),
            # fraction of labels the symmetric noise flipped (0 outside train), and of labels != clean_label overall
            "injected_noise_rate": float(np.sum(label != annotated) / n),
            "label_noise_rate": float(np.sum(label != arrays["clean_label"]) / n),
        }
        columns = {
            "image": [_png(image) for image in arrays["image"]],
            "label": label.tolist(),
            **{key: arrays[key].tolist() for key in features if key not in ("image", "label")},
        }
        info = DatasetInfo(description=json.dumps(description, default=list), features=features)
        splits[split] = Dataset.from_dict(columns, features=features, info=info)
    return DatasetDict(splits)


def synfer_info(dataset: Dataset) -> dict:
    """The generation record of a SynFER split: config, ``injected_noise_rate`` (share of labels flipped by
    ``noise_rate``) and ``label_noise_rate`` (share of ``label != clean_label``, annotators and noise together)."""
    return json.loads(dataset.info.description)


def default_cache_dir() -> Path:
    return Path(os.environ.get("POI_HF_CACHE", Path.home() / ".cache" / "poi_hf")) / "synfer"


def load_synfer(
    config: Optional[SynFERConfig] = None, *, cache_dir: Optional[str | os.PathLike] = None, **kwargs
) -> DatasetDict:
    """Load SynFER, generating and caching it on first use.

    Args:
        config: a :class:`SynFERConfig`, or None to build one from the keyword arguments (its field names, e.g.
            ``num_train=2000, noise_rate=0.2``).
        cache_dir: where generated datasets are kept; default ``$POI_HF_CACHE/synfer`` or ``~/.cache/poi_hf/synfer``.

    Returns:
        DatasetDict with splits ``train``, ``validation``, ``test`` and columns ``image``, ``label``,
        ``clean_label``, ``true_distribution`` (C,), ``votes`` (C,), ``landmarks`` (5, 2), ``aus`` (18,),
        ``identity``. See :func:`synfer_info` for the achieved noise rates.
    """
    if config is not None and kwargs:
        raise ValueError(f"Pass either a SynFERConfig or its fields as keywords, not both (got {sorted(kwargs)}).")
    config = config or SynFERConfig(**kwargs)
    path = Path(cache_dir or default_cache_dir()) / f"synfer-{config.cache_key()}"
    if not path.exists():
        # write next to the target and rename, so concurrent processes never see half a dataset
        tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
        build_synfer(config).save_to_disk(str(tmp))
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(path))
