"""SynFER: parameters, determinism, splits, landmarks on features, AU geometry, annotators, noise, cache, preview."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from poi_hf.data.synfer.geometry import (
    OUTWARD,
    face_geometry,
    image_to_face,
    landmarks,
    sample_identities,
    sample_scenes,
)
from poi_hf.data.synfer.labels import sample_annotator_pool, sample_aus, sample_votes
from poi_hf.data.synfer.render import render_faces
from poi_hf.data.synthetic import SynFERConfig, build_synfer, generate_split, load_synfer, main, synfer_info
from poi_hf.priors import AU_NAMES, CLASS_NAMES

TINY = dict(num_train=24, num_validation=8, num_test=8, image_size=48)


@pytest.fixture(scope="module")
def tiny():
    return build_synfer(SynFERConfig(**TINY, noise_rate=0.25))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"class_names": ["neutral", "joy"]},
        {"noise_rate": 1.0},
        {"noise_rate": -0.1},
        {"image_size": 31},
        {"num_classes": 6},
        {"label_mode": "soft"},
        {"difficulty": 1.5},
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        SynFERConfig(**kwargs)


def test_features_and_shapes(tiny):
    train = tiny["train"]
    assert set(tiny) == {"train", "validation", "test"}
    assert train.features["label"].names == list(CLASS_NAMES[:7])
    assert train.features["clean_label"].names == list(CLASS_NAMES[:7])
    row = train[0]
    assert row["image"].size == (48, 48)
    dist = np.array(train["true_distribution"])
    assert dist.shape == (24, 7) and np.allclose(dist.sum(1), 1, atol=1e-5)
    assert np.array_equal(dist.argmax(1), train["clean_label"])
    assert np.all(np.array(train["votes"]).sum(1) == 10)
    marks = np.array(train["landmarks"])
    assert marks.shape == (24, 5, 2) and marks.min() > 0 and marks.max() < 1
    assert np.all(marks[:, 0, 0] < marks[:, 1, 0]) and np.all(marks[:, 3, 0] < marks[:, 4, 0])  # left = image left
    aus = np.array(train["aus"])
    assert aus.shape == (24, len(AU_NAMES)) and aus.min() >= 0 and aus.max() <= 1


def test_splits_are_identity_disjoint(tiny):
    ids = {split: set(tiny[split]["identity"]) for split in tiny}
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert len(ids["train"]) == 3  # 24 samples, 8 per identity


def test_eight_classes_and_custom_class_names():
    config = SynFERConfig(num_train=8, num_validation=0, num_test=0, image_size=32, num_classes=8)
    assert build_synfer(config)["train"].features["label"].names[-1] == "contempt"
    pair = SynFERConfig(num_train=8, num_validation=0, num_test=0, image_size=32, class_names=["sadness", "happiness"])
    assert pair.num_classes == 2 and build_synfer(pair)["train"].features["label"].names == ["sadness", "happiness"]


def test_deterministic_by_seed(tiny):
    again = build_synfer(SynFERConfig(**TINY, noise_rate=0.25))
    assert tiny["test"].data.table.equals(again["test"].data.table)  # PNG bytes included
    config = SynFERConfig(**TINY)
    images = generate_split(config, "train")["image"]
    # labels and noise use their own random streams: they never change the images
    relabelled = SynFERConfig(**TINY, label_mode="clean", noise_rate=0.5)
    assert np.array_equal(images, generate_split(relabelled, "train")["image"])
    assert not np.array_equal(images, generate_split(SynFERConfig(**TINY, seed=1), "train")["image"])


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("POI_HF_CACHE", str(tmp_path))
    first = load_synfer(**TINY, seed=3)
    (cached,) = (tmp_path / "synfer").iterdir()
    assert cached.name == f"synfer-{SynFERConfig(**TINY, seed=3).cache_key()}"
    second = load_synfer(**TINY, seed=3)
    assert first["train"].data.table.equals(second["train"].data.table)
    assert SynFERConfig(**TINY, seed=3).cache_key() != SynFERConfig(**TINY, seed=3, noise_rate=0.1).cache_key()
    with pytest.raises(ValueError):
        load_synfer(SynFERConfig(**TINY), seed=1)


def test_noise_hits_requested_rate_in_train_only(tiny):
    info = synfer_info(tiny["train"])
    assert info["injected_noise_rate"] == 6 / 24 and info["config"]["noise_rate"] == 0.25
    half = build_synfer(SynFERConfig(**TINY, noise_rate=0.5, label_mode="clean"))["train"]
    assert np.mean(np.array(half["label"]) != half["clean_label"]) == 0.5  # flips always go to another class
    assert synfer_info(tiny["test"])["injected_noise_rate"] == 0.0
    info = synfer_info(tiny["validation"])
    validation = tiny["validation"]
    assert info["label_noise_rate"] == np.mean(np.array(validation["label"]) != validation["clean_label"])


def test_votes_converge_to_annotator_model():
    rng = np.random.default_rng(0)
    names = CLASS_NAMES[:7]
    pool = sample_annotator_pool(rng, names)
    fear_surprise = np.zeros((20_000, 7))
    fear_surprise[:, [6, 2]] = 0.6, 0.4
    votes, first = sample_votes(rng, pool, fear_surprise, 10)
    expected = pool.expected_votes(fear_surprise[:1])[0]
    assert np.allclose(votes.sum(0) / votes.sum(), expected, atol=0.005)
    assert np.allclose(np.bincount(first, minlength=7) / len(first), expected, atol=0.015)
    # the biases are real: pure fear is read as surprise (a confusable class) more often than as happiness
    pure_fear = pool.expected_votes(np.eye(7)[[6]])[0]
    assert pure_fear[2] > pure_fear[1] + 0.03
    mixed = rng.dirichlet(np.ones(7) * 0.3, size=20_000)
    votes, _ = sample_votes(rng, pool, mixed, 10)
    assert np.allclose((votes / 10).mean(0), pool.expected_votes(mixed).mean(0), atol=0.005)


def clean_scenes(n: int) -> dict:
    """Scenes without nuisances: frontal, centred, no blur, noise, occluder or lighting gradient."""
    scene = sample_scenes(np.random.default_rng(0), n, 0.0)
    for key in ("angle", "shift", "yaw", "noise", "blur", "occluder", "light_gain"):
        scene[key][:] = 0
    scene["squash"][:] = 1
    return scene


def test_landmarks_land_on_drawn_features():
    rng = np.random.default_rng(0)
    n = 32
    faces, scene = sample_identities(rng, n), sample_scenes(rng, n, 1.0)  # hardest poses
    aus = sample_aus(rng, rng.dirichlet(np.ones(8), size=n), CLASS_NAMES, 1.0)
    geo = face_geometry(faces, scene, aus)
    for size in (64, 112):
        _, masks = render_faces(faces, scene, geo, size, rng)
        pixel = np.minimum((landmarks(geo, scene) * size).astype(int), size - 1)  # (n, 5, 2) x, y
        at = lambda mask, k: mask[np.arange(n), pixel[:, k, 1], pixel[:, k, 0]]  # noqa: E731
        assert np.all(at(masks["eyes"], 0) > 0.5) and np.all(at(masks["eyes"], 1) > 0.5)
        assert np.all(at(masks["nose_tip"], 2) > 0.5)
        assert np.all(at(masks["lips"], 3) > 0.5) and np.all(at(masks["lips"], 4) > 0.5)


# AU -> (geometry key, expected sign of its change, face-frame rows where the image changes)
BROWS, EYES, NOSE, MOUTH = (0.22, 0.47), (0.36, 0.66), (0.36, 0.75), (0.5, 1.1)
AU_EFFECTS = {
    "AU1": ("brow_inner_y", -1, BROWS),
    "AU2": ("brow_outer_y", -1, BROWS),
    "AU4": ("brow_inner_y", +1, BROWS),
    "AU5": ("lid_up", +1, EYES),
    "AU6": ("lid_lo", -1, EYES),
    "AU7": ("lid_lo", -1, EYES),
    "AU9": ("nostril_y", -1, NOSE),
    "AU10": ("open_up", +1, MOUTH),
    "AU12": ("corner_y", -1, MOUTH),
    "AU14": ("corner_out", -1, MOUTH),
    "AU15": ("corner_y", +1, MOUTH),
    "AU16": ("open_lo", +1, MOUTH),
    "AU17": ("lip_mid_y", -1, MOUTH),
    "AU20": ("corner_out", +1, MOUTH),
    "AU23": ("lip_up", -1, MOUTH),
    "AU24": ("lip_lo", -1, MOUTH),
    "AU25": ("open_lo", +1, MOUTH),
    "AU26": ("jaw_drop", +1, MOUTH),
}


@pytest.mark.parametrize("au", list(AU_EFFECTS))
def test_au_moves_its_geometry(au):
    key, sign, (top, bottom) = AU_EFFECTS[au]
    n = 4
    faces, scene = sample_identities(np.random.default_rng(1), n), clean_scenes(n)
    aus = np.zeros((2 * n, 2, len(AU_NAMES)), dtype=np.float32)
    aus[n:, :, AU_NAMES.index(au)] = 1.0  # first half neutral, second half the AU on both sides
    faces, scene = ({k: np.concatenate([v, v]) for k, v in p.items()} for p in (faces, scene))
    geo = face_geometry(faces, scene, aus)
    geo["corner_out"] = OUTWARD * (geo["corner_x"] - 0.5)
    change = np.asarray(geo[key][n:] - geo[key][:n])
    assert np.all(sign * change > 0.005), f"{au} should move {key} by {sign:+d}: {change}"

    images, _ = render_faces(faces, scene, geo, 64, np.random.default_rng(0))
    changed = np.abs(images[n:].astype(int) - images[:n]).max(-1) > 12  # (n, 64, 64)
    centres = (np.arange(64, dtype=np.float32) + 0.5) / 64
    _, rows = image_to_face({k: v[:n] for k, v in scene.items()}, centres[None, None, :], centres[None, :, None])
    inside = (rows >= top) & (rows <= bottom)
    assert np.all(changed.sum((1, 2)) >= 6), f"{au} changes too few pixels to be seen at 64 px"
    assert (changed & inside).sum() >= 0.9 * changed.sum(), f"{au} changes pixels outside rows {top}..{bottom}"


def test_contempt_is_one_sided():
    rng = np.random.default_rng(0)
    contempt = np.zeros((200, 8), dtype=np.float32)
    contempt[:, 7] = 1
    aus = sample_aus(rng, contempt, CLASS_NAMES, 0.0)
    au12 = aus[:, :, AU_NAMES.index("AU12")]
    assert np.all(np.abs(au12[:, 0] - au12[:, 1]) > 0.3)
    assert 0.3 < np.mean(au12[:, 0] > au12[:, 1]) < 0.7  # either side


def test_preview_cli(tmp_path):
    from PIL import Image

    path = tmp_path / "sheet.png"
    main(["--preview", str(path), "--num", "4", "--columns", "2", "--image-size", "32"])
    assert Image.open(path).size[0] == 2 * 32 * 3
