"""PIN and TRN as transformers models: shapes, Auto classes, save/load, pipeline, remote code, bad input."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification, pipeline

from poi_hf import (
    PINConfig,
    PINForImageClassification,
    POIImageProcessor,
    TRNConfig,
    TRNForImageClassification,
)
from poi_hf.pin.modeling_pin import crop_regions, region_frames
from poi_hf.presets import tiny_pin_config, tiny_trn_config
from poi_hf.priors import CLASS_NAMES, landmark_template
from without_poi_hf import HIDE_POI_HF

RAFDB_ORDER = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def save_checkpoint(model, directory, size):
    model.save_pretrained(directory)
    POIImageProcessor(size={"height": size, "width": size}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def trn_dir(tmp_path_factory):
    model = TRNForImageClassification(tiny_trn_config(RAFDB_ORDER)).eval()
    return save_checkpoint(model, tmp_path_factory.mktemp("trn"), 48)


@pytest.mark.parametrize("num_classes", [7, 8])
@pytest.mark.parametrize("size", [48, 112, 224])
def test_pin_output_shapes(num_classes, size):
    config = tiny_pin_config(CLASS_NAMES[:num_classes])
    model = PINForImageClassification(config).eval()
    batch, regions, aus = 2, config.num_regions, config.num_aus
    out = model(torch.randn(batch, 3, size, size), landmarks=torch.tensor(config.landmark_template).expand(batch, 5, 2))
    assert out.logits.shape == (batch, num_classes)
    assert out.soft_labels.shape == (batch, num_classes)
    assert out.region_logits.shape == (batch, regions, num_classes)
    assert out.global_logits.shape == (batch, num_classes)
    assert out.au_logits.shape == (batch, regions, aus)
    assert out.region_weights.shape == (batch, regions + 1, num_classes)
    assert out.region_contributions.shape == (batch, regions + 1, num_classes)
    assert out.region_boxes.shape == (batch, regions, 4, 2)
    torch.testing.assert_close(out.soft_labels.sum(-1), torch.ones(batch))
    torch.testing.assert_close(out.logits.softmax(-1), out.soft_labels)
    torch.testing.assert_close(out.region_contributions.sum(1), torch.ones(batch, num_classes))


@pytest.mark.parametrize("num_classes", [7, 8])
@pytest.mark.parametrize("size", [48, 96, 224])
def test_trn_output_shapes(num_classes, size):
    model = TRNForImageClassification(tiny_trn_config(CLASS_NAMES[:num_classes])).eval()
    out = model(torch.randn(3, 3, size, size), labels=torch.tensor([0, 1, num_classes - 1]))
    assert out.logits.shape == (3, num_classes)
    assert out.confidence.shape == (3,)
    assert ((out.confidence > 0) & (out.confidence < 1)).all()
    assert out.loss.ndim == 0


def test_num_regions_follows_config():
    config = tiny_pin_config(
        region_names=["eyes", "mouth"],
        region_anchors=[[0.5, 0.5, 0, 0, 0], [0, 0, 0, 0.5, 0.5]],
        region_offsets=[[0, 0], [0, 0]],
        region_sizes=[[1.5, 0.8], [1.2, 0.8]],
        region_mirror=[False, False],
        region_aus=[[1.0] * 18, [1.0] * 18],
    )
    out = PINForImageClassification(config)(torch.randn(2, 3, 64, 64))
    assert out.region_logits.shape == (2, 2, 7) and out.region_weights.shape == (2, 3, 7)


def test_pin_without_landmarks_uses_template():
    model = PINForImageClassification(tiny_pin_config()).eval()
    pixels = torch.randn(2, 3, 48, 48)
    template = torch.tensor(landmark_template("arcface")).expand(2, 5, 2)
    torch.testing.assert_close(model(pixels).logits, model(pixels, landmarks=template).logits)


@pytest.mark.parametrize(
    "model_class, config_fn",
    [
        (PINForImageClassification, tiny_pin_config),
        (TRNForImageClassification, tiny_trn_config),
    ],
)
def test_save_and_reload_through_auto_classes(tmp_path, model_class, config_fn):
    model = model_class(config_fn(RAFDB_ORDER)).eval()
    save_checkpoint(model, tmp_path, 48)
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in tmp_path.iterdir()}
    pixels = torch.randn(2, 3, 48, 48)
    for auto_class in (AutoModel, AutoModelForImageClassification):
        reloaded = auto_class.from_pretrained(tmp_path).eval()
        assert type(reloaded) is model_class
        torch.testing.assert_close(reloaded(pixels).logits, model(pixels).logits, rtol=0, atol=0)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.id2label == dict(enumerate(RAFDB_ORDER)) and config.label2id["neutral"] == 6
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), POIImageProcessor)


def test_pin_tables_travel_in_config(tmp_path):
    model = PINForImageClassification(tiny_pin_config(RAFDB_ORDER))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["au_prior"][RAFDB_ORDER.index("happiness")][saved["au_names"].index("AU12")] == 1.0
    assert len(saved["region_aus"]) == len(saved["region_names"]) == 5
    reloaded = PINForImageClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.priors.member_prior, model.priors.member_prior)


def test_pipeline_returns_every_class(trn_dir, tmp_path, monkeypatch):
    prompts = []  # transformers swallows errors raised from its prompt, so record the prompt instead
    monkeypatch.setattr("builtins.input", lambda *args: prompts.append(args) or "n")
    classify = pipeline("image-classification", model=str(trn_dir))
    assert not prompts, "pipeline asked whether to trust remote code although poi_hf is installed"
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (60, 50, 3), dtype=np.uint8))
    gray = Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8), mode="L")
    rgba = rgb.convert("RGBA")
    path = tmp_path / "face.png"
    rgb.save(path)
    for image in (rgb, str(path), gray, rgba):
        scores = classify(image, top_k=7)
        assert sorted(s["label"] for s in scores) == sorted(RAFDB_ORDER)
        assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-5)
    batch = classify([rgb, gray, str(path)], top_k=7)
    assert len(batch) == 3 and all(len(scores) == 7 for scores in batch)


def test_remote_code_load_without_poi_hf(trn_dir, tmp_path):
    """A fresh interpreter that cannot import poi_hf loads the TRN from its folder with trust_remote_code."""
    model = AutoModelForImageClassification.from_pretrained(trn_dir).eval()
    pixels = torch.randn(2, 3, 48, 48)
    torch.save({"pixels": pixels, "logits": model(pixels).logits}, tmp_path / "expected.pt")
    script = HIDE_POI_HF + textwrap.dedent(f"""
        import torch
        from PIL import Image
        from transformers import AutoModelForImageClassification, pipeline
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        model = AutoModelForImageClassification.from_pretrained({str(trn_dir)!r}, trust_remote_code=True).eval()
        assert "poi_hf" not in type(model).__module__, type(model).__module__
        torch.testing.assert_close(model(expected["pixels"]).logits, expected["logits"])
        scores = pipeline("image-classification", model={str(trn_dir)!r}, trust_remote_code=True)(
            Image.new("L", (48, 48)), top_k=7)
        assert len(scores) == 7
        print("REMOTE-OK", type(model).__module__)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE-OK transformers_modules" in result.stdout


def test_region_crops_move_with_landmarks():
    """Shifting the landmarks by whole pixels shifts every crop's content by the same pixels."""
    config = tiny_pin_config()
    model = PINForImageClassification(config)
    image = torch.rand(1, 3, 64, 64)
    template = torch.tensor(config.landmark_template)[None]
    shift = torch.tensor([6.0, -4.0]) / 64
    frames = region_frames(
        template,
        model.priors.region_anchors,
        model.priors.region_offsets,
        model.priors.region_sizes,
        model.priors.region_mirror,
        (64, 64),
    )
    shifted_frames = region_frames(
        template + shift,
        model.priors.region_anchors,
        model.priors.region_offsets,
        model.priors.region_sizes,
        model.priors.region_mirror,
        (64, 64),
    )
    moved_image = torch.roll(image, shifts=(-4, 6), dims=(2, 3))
    original = crop_regions(image, *frames, (64, 64), 8)
    follows = crop_regions(moved_image, *shifted_frames, (64, 64), 8)
    stays = crop_regions(image, *shifted_frames, (64, 64), 8)
    torch.testing.assert_close(follows, original, atol=1e-5, rtol=0)
    assert (stays - original).abs().mean() > 0.05
    boxes = model(image, landmarks=template + shift).region_boxes - model(image, landmarks=template).region_boxes
    torch.testing.assert_close(boxes, shift.expand_as(boxes), atol=1e-6, rtol=0)


def test_flipped_symmetric_face_gives_mirrored_crops():
    """On a left-right symmetric image with symmetric landmarks, each left region's crop equals its mirrored
    right partner's, and flipping the image (with the left/right landmark swap) swaps the two crops."""
    config = tiny_pin_config()
    model = PINForImageClassification(config)
    half = torch.rand(1, 3, 64, 32)
    image = torch.cat([half, half.flip(-1)], dim=-1)
    landmarks = torch.tensor([[[0.35, 0.45], [0.65, 0.45], [0.5, 0.62], [0.38, 0.8], [0.62, 0.8]]])
    tables = (
        model.priors.region_anchors,
        model.priors.region_offsets,
        model.priors.region_sizes,
        model.priors.region_mirror,
    )
    crops = crop_regions(image, *region_frames(landmarks, *tables, (64, 64)), (64, 64), 9)
    names = config.region_names
    for left, right in (("left_eye_brow", "right_eye_brow"), ("mouth_left", "mouth_right")):
        torch.testing.assert_close(crops[:, names.index(left)], crops[:, names.index(right)], atol=1e-5, rtol=0)

    asym = torch.rand(1, 3, 64, 64)
    flipped_landmarks = landmarks.clone()
    flipped_landmarks[..., 0] = 1 - flipped_landmarks[..., 0]
    flipped_landmarks = flipped_landmarks[:, [1, 0, 2, 4, 3]]
    crops = crop_regions(asym, *region_frames(landmarks, *tables, (64, 64)), (64, 64), 9)
    flipped = crop_regions(asym.flip(-1), *region_frames(flipped_landmarks, *tables, (64, 64)), (64, 64), 9)
    for left, right in (("left_eye_brow", "right_eye_brow"), ("mouth_left", "mouth_right")):
        torch.testing.assert_close(flipped[:, names.index(left)], crops[:, names.index(right)], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        flipped[:, names.index("glabella_nose")], crops[:, names.index("glabella_nose")].flip(-1), atol=1e-5, rtol=0
    )


def test_image_processor_converts_to_rgb():
    processor = POIImageProcessor(size={"height": 48, "width": 48})
    for mode in ("L", "RGBA", "RGB", "LA"):
        pixels = processor(Image.new(mode, (30, 41)), return_tensors="pt")["pixel_values"]
        assert pixels.shape == (1, 3, 48, 48)


def test_image_processor_scales_16_bit_and_float_images(tmp_path):
    """A 16-bit PNG (values x 257), a 16-bit "I" image and a float image in [0, 1] give the 8-bit image's pixels."""
    processor = POIImageProcessor(size={"height": 48, "width": 48})
    gray = np.random.default_rng(0).integers(0, 256, (40, 36), dtype=np.uint8)
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "16bit.png")
    png16 = Image.open(tmp_path / "16bit.png")
    assert png16.mode == "I;16"
    images = {
        "I;16": png16,
        "I": Image.fromarray(gray.astype(np.int32) * 257),
        "F": Image.fromarray(gray.astype(np.float32) / 255),
    }
    expected = processor(Image.fromarray(gray), return_tensors="pt")["pixel_values"]
    step = 1 / 255 / min(processor.image_std)  # one 8-bit level after normalisation
    for mode, image in images.items():
        assert image.mode == mode
        pixels = processor(image, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(pixels, expected, atol=step, rtol=0, msg=mode)


def test_image_processor_reads_float_arrays_once_and_refuses_empty_ones():
    """A float array in [0, 1] is the uint8 image it stands for (not rescaled twice); an empty array is an error."""
    processor = POIImageProcessor(size={"height": 48, "width": 48})
    rgb = np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    expected = processor(rgb, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(processor(rgb / 255.0, return_tensors="pt")["pixel_values"], expected)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        processor(rgb.astype(np.float32), return_tensors="pt")
    with pytest.raises(ValueError, match="empty"):
        processor(np.zeros((0, 0, 3), np.uint8), return_tensors="pt")


@pytest.mark.parametrize(
    "model_class, config_fn",
    [
        (PINForImageClassification, tiny_pin_config),
        (TRNForImageClassification, tiny_trn_config),
    ],
)
def test_bad_inputs_raise_clear_errors(model_class, config_fn):
    model = model_class(config_fn())
    with pytest.raises(ValueError, match="pixel_values must have shape"):
        model(torch.randn(2, 1, 48, 48))
    with pytest.raises(ValueError, match="pixel_values must have shape"):
        model(torch.randn(3, 48, 48))
    with pytest.raises(ValueError, match=r"outside|lie in"):
        model(torch.randn(2, 3, 48, 48), labels=torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="labels must be a 1-D integer"):
        model(torch.randn(2, 3, 48, 48), labels=torch.tensor([0.0, 1.0]))


def test_bad_landmarks_and_configs():
    model = PINForImageClassification(tiny_pin_config())
    with pytest.raises(ValueError, match=r"landmarks must have shape \(2, 5, 2\)"):
        model(torch.randn(2, 3, 48, 48), landmarks=torch.rand(2, 68, 2))
    template = torch.tensor(landmark_template("arcface")).expand(2, 5, 2)
    pixels, nan, edge = template * 48, template.clone(), template.clone()
    nan[1, 2, 0] = float("nan")
    edge[0, 0] = torch.tensor([-0.2, 1.3])  # pushed out by augmentation: still accepted
    model(torch.randn(2, 3, 48, 48), landmarks=edge)
    in_pixels = r"in \[0, 1\] coordinates .*accepted: -0.5..1.5.*sample\(s\) \[0, 1\] have \[16.4"
    with pytest.raises(ValueError, match=in_pixels):
        model(torch.randn(2, 3, 48, 48), landmarks=pixels)
    with pytest.raises(ValueError, match=r"not NaN; sample\(s\) \[1\] have \[nan\]"):
        model(torch.randn(2, 3, 48, 48), landmarks=nan)
    with pytest.raises(ValueError, match="au_prior must be 8 x 18"):
        PINConfig(id2label=dict(enumerate(CLASS_NAMES)), au_prior=[[0.0] * 18] * 7)
    with pytest.raises(ValueError, match="Unknown class name"):
        tiny_pin_config(["happiness", "joy"])
    with pytest.raises(ValueError, match="region_stage"):
        PINConfig(region_stage="stage9")
    with pytest.raises(ValueError, match="num_channels"):
        TRNConfig(num_channels=1)
