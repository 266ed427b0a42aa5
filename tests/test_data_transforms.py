"""Augmentation keeps landmarks on the pixels they mark; eval transform, pass-through, collate, sampler."""

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image, Value
from PIL import Image as PILImage
from torch.utils.data import DataLoader

from poi_hf.data import (
    FEREvalTransform,
    FERTrainTransform,
    class_balanced_sampler,
    poi_collate,
    set_fer_transforms,
)
from poi_hf.data.transforms import FLIP_ORDER
from poi_hf.priors import landmark_template

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]], dtype=np.uint8)
NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, grayscale_p=0.0, erase_p=0.0)
GEOMETRIES = {
    "crop": dict(crop_scale=(0.6, 0.6), crop_ratio=(0.8, 1.25), rotation=0.0, zoom=(1, 1), translate=0.0, flip_p=0.0),
    "rotation": dict(crop_scale=(1, 1), crop_ratio=(1, 1), rotation=15.0, zoom=(1, 1), translate=0.0, flip_p=0.0),
    "zoom": dict(crop_scale=(1, 1), crop_ratio=(1, 1), rotation=0.0, zoom=(0.8, 1.2), translate=0.0, flip_p=0.0),
    "translate": dict(crop_scale=(1, 1), crop_ratio=(1, 1), rotation=0.0, zoom=(1, 1), translate=0.1, flip_p=0.0),
    "flip": dict(crop_scale=(1, 1), crop_ratio=(1, 1), rotation=0.0, zoom=(1, 1), translate=0.0, flip_p=1.0),
    "all": dict(flip_p=0.5),
}


def marked_face(size: int, box: tuple[int, int, int, int], mode: str = "RGB") -> tuple[PILImage.Image, np.ndarray]:
    """A black image with a coloured 7 x 7 blob centred on each template landmark of ``box``; landmarks in [0, 1]
    of the box sit on the centres of the blobs' middle pixels."""
    x, y, w, h = box
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    landmarks = []
    for colour, (u, v) in zip(COLOURS, landmark_template("arcface")):
        column, row = int(x + u * w), int(y + v * h)
        pixels[row - 3 : row + 4, column - 3 : column + 4] = colour
        landmarks.append([(column + 0.5 - x) / w, (row + 0.5 - y) / h])
    return PILImage.fromarray(pixels).convert(mode), np.array(landmarks)


def colour_under(pixels: torch.Tensor, point: torch.Tensor, transform: FEREvalTransform) -> np.ndarray:
    size = pixels.shape[-1]
    image = pixels * transform._std + transform._mean
    column, row = (point * size).long().tolist()
    return (image[:, row, column] * 255).numpy()


@pytest.mark.parametrize("name", list(GEOMETRIES))
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_landmarks_stay_on_marked_pixels(name, mode):
    torch.manual_seed(0)
    transform = FERTrainTransform(image_size=64, **NO_COLOUR, **GEOMETRIES[name])
    image, landmarks = marked_face(100, (0, 0, 100, 100), mode)
    checked = 0
    for _ in range(20):
        output = transform({"image": [image], "label": [0], "landmarks": [landmarks]})
        pixels, points = output["pixel_values"][0], output["landmarks"][0]
        # Which blob each output point should sit on: a mirrored image swaps left and right.
        mirrored = colour_under(pixels, points[0], transform)[1] > 128  # green = the old right eye
        for k, point in enumerate(points):
            if ((point < 0.06) | (point > 0.94)).any():
                continue  # pushed out of view by the augmentation
            expected = COLOURS[FLIP_ORDER[k] if mirrored else k]
            np.testing.assert_allclose(colour_under(pixels, point, transform), expected, atol=40)
            checked += 1
        if name == "flip":
            assert mirrored
        elif name != "all":
            assert not mirrored
    assert checked > 60


def test_face_box_crop_and_downscale_keep_landmarks():
    """AffectNet-style: a face box inside a larger photo, shrunk more than 2x (the reduce() path)."""
    torch.manual_seed(1)
    box = (60, 40, 180, 180)
    image, landmarks = marked_face(300, box)
    for transform in (FEREvalTransform(image_size=48), FERTrainTransform(image_size=48, **NO_COLOUR)):
        output = transform({"image": [image], "label": [3], "landmarks": [landmarks], "face_box": [box]})
        pixels, points = output["pixel_values"][0], output["landmarks"][0]
        mirrored = colour_under(pixels, points[0], transform)[1] > 128
        for k, point in enumerate(points):
            expected = COLOURS[FLIP_ORDER[k] if mirrored else k]
            np.testing.assert_allclose(colour_under(pixels, point, transform), expected, atol=60)


def test_flip_swaps_left_and_right_points():
    transform = FERTrainTransform(image_size=32, **NO_COLOUR, **GEOMETRIES["flip"])
    landmarks = np.array(landmark_template("arcface"))
    output = transform({"image": [PILImage.new("RGB", (40, 40))], "label": [0], "landmarks": [landmarks]})
    flipped = output["landmarks"][0].numpy()
    expected = np.c_[1 - landmarks[:, 0], landmarks[:, 1]][list(FLIP_ORDER)]
    np.testing.assert_allclose(flipped, expected, atol=1e-5)
    assert flipped[0, 0] < flipped[1, 0] and flipped[3, 0] < flipped[4, 0]  # still left before right


def test_eval_transform_outputs_and_pass_through():
    transform = FEREvalTransform(image_size=24, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_style="rafdb")
    gray = PILImage.fromarray(np.full((48, 48), 255, dtype=np.uint8))  # FER2013 images are mode "L"
    output = transform(
        {
            "image": [gray],
            "label": [2],
            "soft_labels": [[0.25, 0.75]],
            "clean_label": [1],
            "true_distribution": [[0.5, 0.5]],
        }
    )
    assert output["pixel_values"][0].shape == (3, 24, 24)
    torch.testing.assert_close(output["pixel_values"][0], torch.ones(3, 24, 24))
    assert output["labels"][0].dtype == torch.int64 and output["labels"][0].item() == 2
    torch.testing.assert_close(output["landmarks"][0], torch.tensor(landmark_template("rafdb")))
    assert output["clean_labels"][0].item() == 1 and output["clean_labels"][0].dtype == torch.int64
    torch.testing.assert_close(output["soft_labels"][0], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(output["true_distribution"][0], torch.tensor([0.5, 0.5]))


def test_colour_augmentation_ranges():
    torch.manual_seed(0)
    transform = FERTrainTransform(image_size=32, erase_p=1.0, grayscale_p=1.0)
    image = PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    pixels = transform({"image": [image], "label": [0]})["pixel_values"][0]
    raw = pixels * transform._std + transform._mean
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    erased = (pixels == 0).all(0)
    assert erased.sum() >= 0.02 * 32 * 32 * 0.5  # the erased patch is the mean colour, 0 after normalisation
    outside = ~erased
    torch.testing.assert_close(raw[0][outside], raw[1][outside])  # grayscale: equal channels


def test_set_transform_dataloader_and_collate():
    features = Features({"image": Image(), "label": ClassLabel(names=["neutral", "happiness"]), "w": Value("int32")})
    images = [PILImage.new("RGB", (20, 20), (i * 40, 0, 0)) for i in range(6)]
    dataset = Dataset.from_dict({"image": images, "label": [0, 1] * 3, "w": list(range(6))}, features=features)
    splits = set_fer_transforms({"train": dataset, "test": dataset.select(range(2))}, image_size=16)
    assert isinstance(splits["train"][0]["pixel_values"], torch.Tensor)
    loader = DataLoader(splits["train"], batch_size=4, collate_fn=poi_collate)
    batch = next(iter(loader))
    assert batch["pixel_values"].shape == (4, 3, 16, 16) and batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].tolist() == [0, 1, 0, 1] and batch["landmarks"].shape == (4, 5, 2)
    assert set(batch) == {"pixel_values", "labels", "landmarks"}
    with pytest.raises(ValueError, match="differ"):
        poi_collate([{"labels": torch.tensor(0)}, {"pixel_values": torch.zeros(1)}])


def test_class_balanced_sampler_balances():
    labels = [0] * 90 + [1] * 9 + [2]
    features = Features({"label": ClassLabel(names=["neutral", "happiness", "contempt"])})
    dataset = Dataset.from_dict({"label": labels}, features=features)
    dataset.set_transform(lambda batch: {"not": [0] * len(batch["label"])})  # the label is read past it
    sampler = class_balanced_sampler(dataset, num_samples=3000, generator=torch.Generator().manual_seed(0))
    counts = np.bincount(np.array(labels)[list(sampler)], minlength=3)
    assert len(sampler) == 3000 and (np.abs(counts - 1000) < 150).all()
    mild = class_balanced_sampler(labels, power=0.5)
    assert mild.weights[99] / mild.weights[0] == pytest.approx(np.sqrt(90))
