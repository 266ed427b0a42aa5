"""``pipeline("facial-expression-recognition")`` and examples/predict.py on real photos, tiny random TRN/PIN."""

import csv
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import ResNetConfig, ResNetForImageClassification, pipeline

from poi_hf import PINForImageClassification, POIImageProcessor, TRNForImageClassification
from poi_hf.faces import (
    HaarFaceDetector,
    InvalidImageError,
    NoFaceError,
    annotate,
    crop_faces,
    load_face_detector,
    load_rgb_image,
)
from poi_hf.hub import check_model_folder
from poi_hf.pipelines import FacialExpressionRecognitionPipeline
from poi_hf.data import FER2013_CLASSES
from poi_hf.presets import image_processor, tiny_pin_config, tiny_trn_config
from poi_hf.priors import landmark_template
from test_faces import sample_photos_or_skip

RAFDB_ORDER = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def save_tiny_checkpoints(directory: Path, class_names: list[str] = RAFDB_ORDER) -> Path:
    """Write random tiny ``trn/`` and ``pin/`` checkpoints (as `examples/train.py` lays them out); return ``trn/``."""
    for name, model in (
        ("trn", TRNForImageClassification(tiny_trn_config(class_names))),
        ("pin", PINForImageClassification(tiny_pin_config(class_names))),
    ):
        size = model.config.image_size
        model.save_pretrained(directory / name)
        POIImageProcessor(size={"height": size, "width": size}).save_pretrained(directory / name)
    return directory / "trn"


@pytest.fixture(scope="module")
def photos() -> dict:
    return sample_photos_or_skip()


@pytest.fixture(scope="module")
def fer_checkpoint(tmp_path_factory) -> Path:
    """A tiny random TRN checkpoint with a sibling PIN checkpoint."""
    torch.manual_seed(0)
    return save_tiny_checkpoints(tmp_path_factory.mktemp("fer_run"))


@pytest.fixture(scope="module")
def fer(fer_checkpoint) -> FacialExpressionRecognitionPipeline:
    return pipeline("facial-expression-recognition", model=str(fer_checkpoint), trust_remote_code=False)


def haar_pipeline(model_dir: Path) -> FacialExpressionRecognitionPipeline:
    """The FER pipeline on a saved model folder, with OpenCV's Haar detector (no detector download)."""
    return pipeline("facial-expression-recognition", model=str(model_dir), face_detector=HaarFaceDetector(),
                    trust_remote_code=False)


def aligned_face_pixels(fer: FacialExpressionRecognitionPipeline, photo: Path) -> torch.Tensor:
    """(1, 3, H, W): the one face ``fer``'s detector finds in ``photo``, aligned and preprocessed as the pipeline
    does."""
    (crop,) = crop_faces(photo, fer.face_detector)
    return fer.image_processor(crop.image, return_tensors="pt")["pixel_values"]


def test_every_face_gets_a_distribution_confidence_and_regions(fer, photos):
    faces = fer(str(photos["multi_face.jpg"]))
    assert len(faces) == 5
    pin_config = fer.pin_model.config
    for face in faces:
        assert set(face["distribution"]) == set(RAFDB_ORDER)
        assert sum(face["distribution"].values()) == pytest.approx(1.0, abs=1e-5)
        assert face["label"] == max(face["distribution"], key=face["distribution"].get)
        assert face["score"] == face["distribution"][face["label"]]
        assert 0.0 < face["confidence"] < 1.0
        box = face["box"]
        assert box["xmin"] < box["xmax"] and box["ymin"] < box["ymax"]
        assert np.array(face["landmarks"]).shape == (5, 2)
        assert sum(face["pin_distribution"].values()) == pytest.approx(1.0, abs=1e-5)
        assert face["pin_support"] == face["pin_distribution"][face["label"]]
        assert [region["name"] for region in face["regions"]] == [*pin_config.region_names, "global"]
        assert sum(region["contribution"] for region in face["regions"]) == pytest.approx(1.0, abs=1e-5)
        for region in face["regions"][:-1]:  # region boxes land on the face, in image pixels
            centre = np.mean(region["polygon"], axis=0)
            width, height = box["xmax"] - box["xmin"], box["ymax"] - box["ymin"]
            assert box["xmin"] - 0.2 * width < centre[0] < box["xmax"] + 0.2 * width
            assert box["ymin"] - 0.2 * height < centre[1] < box["ymax"] + 0.2 * height


def test_distribution_is_the_trn_on_the_aligned_crop(fer, photos):
    (face,) = fer(str(photos["single_face.jpg"]))
    pixel_values = aligned_face_pixels(fer, photos["single_face.jpg"])
    with torch.no_grad():
        output = fer.model(pixel_values)
    expected = output.logits.softmax(-1)[0]
    np.testing.assert_allclose([face["distribution"][name] for name in RAFDB_ORDER], expected.numpy(), atol=1e-6)
    assert face["confidence"] == pytest.approx(float(output.confidence[0]), abs=1e-6)


def test_pin_is_optional_and_can_be_given_explicitly(fer_checkpoint, photos, tmp_path):
    no_pin = pipeline("facial-expression-recognition", model=str(fer_checkpoint), pin_model=False,
                      face_detector=HaarFaceDetector(), trust_remote_code=False)
    (face,) = no_pin(str(photos["single_face.jpg"]))
    assert "regions" not in face and "pin_distribution" not in face
    # A TRN without a sibling pin/ folder gets no PIN, unless one is named.
    lone_trn = tmp_path / "lone"
    TRNForImageClassification.from_pretrained(fer_checkpoint).save_pretrained(lone_trn)
    POIImageProcessor.from_pretrained(fer_checkpoint).save_pretrained(lone_trn)
    assert pipeline("facial-expression-recognition", model=str(lone_trn), trust_remote_code=False).pin_model is None
    named = pipeline("facial-expression-recognition", model=str(lone_trn), pin_model=str(fer_checkpoint.parent / "pin"),
                     trust_remote_code=False)
    assert "regions" in named(str(photos["single_face.jpg"]))[0]


def test_untrained_confidence_is_not_reported(fer_checkpoint, photos, tmp_path):
    """A baseline's TRN (CE, KD, ...) leaves its uncertainty head at its init and says so in its config."""
    baseline = tmp_path / "baseline"
    model = TRNForImageClassification.from_pretrained(fer_checkpoint)
    model.config.confidence_trained = False
    model.save_pretrained(baseline)
    POIImageProcessor.from_pretrained(fer_checkpoint).save_pretrained(baseline)
    fer = haar_pipeline(baseline)
    (face,) = fer(str(photos["single_face.jpg"]))
    assert face["confidence"] is None and face["label"] in RAFDB_ORDER
    # the flip consistency needs no trained head: a baseline with it reports it
    model.config.confidence_source = "flip_consistency"
    model.save_pretrained(baseline)
    fer = haar_pipeline(baseline)
    (face,) = fer(str(photos["single_face.jpg"]))
    pixel_values = aligned_face_pixels(fer, photos["single_face.jpg"])
    with torch.no_grad():
        views = model.eval()(torch.cat([pixel_values, pixel_values.flip(-1)])).logits.softmax(-1)
    predicted = RAFDB_ORDER.index(face["label"])
    assert face["confidence"] == pytest.approx(float(views[:, predicted].mean()), abs=1e-6)


def test_mirror_averaged_model_reports_the_views_mean(fer_checkpoint, photos, tmp_path):
    """A TRN with mirror_average: the pipeline's distribution is the mean of the face's and its mirror image's
    probabilities, and the flip-consistency confidence is that mean's top probability."""
    averaged = tmp_path / "averaged"
    model = TRNForImageClassification.from_pretrained(fer_checkpoint, confidence_source="flip_consistency")
    model.config.mirror_average = True
    model.save_pretrained(averaged)
    POIImageProcessor.from_pretrained(fer_checkpoint).save_pretrained(averaged)
    fer = haar_pipeline(averaged)
    (face,) = fer(str(photos["single_face.jpg"]))
    pixel_values = aligned_face_pixels(fer, photos["single_face.jpg"])
    model.config.mirror_average, model.config.confidence_source = False, "head"
    with torch.no_grad():
        mean = model.eval()(torch.cat([pixel_values, pixel_values.flip(-1)])).logits.softmax(-1).mean(0)
    assert [face["distribution"][name] for name in RAFDB_ORDER] == pytest.approx(mean.tolist(), abs=1e-5)
    assert face["label"] == RAFDB_ORDER[int(mean.argmax())]
    assert face["confidence"] == pytest.approx(float(mean.max()), abs=1e-5)


def test_plain_image_classifier_without_confidence(photos, tmp_path):
    """Any image classifier works: a transformers ResNet has no uncertainty head, so ``confidence`` is None."""
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                          id2label=dict(enumerate(RAFDB_ORDER)))
    ResNetForImageClassification(config).save_pretrained(tmp_path / "resnet")
    POIImageProcessor(size={"height": 48, "width": 48}).save_pretrained(tmp_path / "resnet")
    fer = pipeline("facial-expression-recognition", model=str(tmp_path / "resnet"), trust_remote_code=False)
    (face,) = fer(str(photos["single_face.jpg"]))
    assert face["confidence"] is None and set(face["distribution"]) == set(RAFDB_ORDER)
    assert sum(face["distribution"].values()) == pytest.approx(1.0, abs=1e-5)
    assert annotate(load_rgb_image(photos["single_face.jpg"]), [face]).mode == "RGB"
    assert fer(str(photos["free-mountain-vector-01.jpg"]), allow_no_face=True) == []


def test_pin_with_other_classes_is_refused(fer_checkpoint, tmp_path):
    other = save_tiny_checkpoints(tmp_path, class_names=list(reversed(RAFDB_ORDER))).parent / "pin"
    with pytest.raises(ValueError, match="classes"):
        pipeline("facial-expression-recognition", model=str(fer_checkpoint), pin_model=str(other),
                 trust_remote_code=False)


def test_bad_inputs_raise_clear_errors(fer, photos, tmp_path):
    with pytest.raises(NoFaceError, match="No face found"):
        fer(str(photos["free-mountain-vector-01.jpg"]))
    assert fer(str(photos["free-mountain-vector-01.jpg"]), allow_no_face=True) == []
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    with pytest.raises(InvalidImageError, match="not an image file"):
        fer(str(fake))
    results = fer([str(photos["single_face.jpg"]), str(photos["Image_with_alpha.png"])])
    assert [len(faces) for faces in results] == [1, 1]


def test_image_classification_pipeline_still_works_on_aligned_crops(fer_checkpoint, photos):
    (crop,) = crop_faces(photos["single_face.jpg"], load_face_detector())
    classify = pipeline("image-classification", model=str(fer_checkpoint), trust_remote_code=False)
    predictions = classify(crop.image, top_k=len(RAFDB_ORDER))
    assert {prediction["label"] for prediction in predictions} == set(RAFDB_ORDER)


def test_predict_script_writes_jsonl_csv_and_annotated_images(fer_checkpoint, photos, tmp_path):
    predict = load_predict_script()
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("multi_face.jpg", "free-mountain-vector-01.jpg"):
        shutil.copy(photos[name], folder / name)
    (folder / "broken.jpg").write_text("not an image")
    jsonl, table, annotated = tmp_path / "faces.jsonl", tmp_path / "faces.csv", tmp_path / "annotated"
    inputs = [str(folder), str(Path(photos["single_face.jpg"]).parent / "0-f1-*.jpg")]
    # exit status 1: broken.jpg failed (the landscape has no face: an empty answer); the other images are still done
    assert predict.main([*inputs, "--model", str(fer_checkpoint), "--output", str(jsonl),
                         "--annotate-dir", str(annotated)]) == 1
    records = {Path(record["file"]).name: record for record in map(json.loads, jsonl.read_text().splitlines())}
    assert {name: len(record["faces"]) for name, record in records.items()} == {
        "0-f1-su-ph.jpg": 1, "broken.jpg": 0, "free-mountain-vector-01.jpg": 0, "multi_face.jpg": 5}
    assert "not an image file" in records["broken.jpg"]["error"]
    assert records["free-mountain-vector-01.jpg"]["error"] is None
    assert sorted(path.name for path in annotated.rglob("*.png")) == ["0-f1-su-ph.jpg.png", "multi_face.jpg.png"]

    assert predict.main([*inputs, "--model", str(fer_checkpoint), "--output", str(table), "--no-pin"]) == 1
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 1 + 1 + 1 + 5  # one row per face, one per image without faces
    assert [row["face"] for row in rows if row["file"].endswith("multi_face.jpg")] == ["1", "2", "3", "4", "5"]
    assert {f"p_{name}" for name in RAFDB_ORDER} <= set(rows[0])
    assert not any(key.startswith("region_") for key in rows[0])
    with pytest.raises(FileNotFoundError, match="neither a file"):
        predict.main([str(tmp_path / "missing.jpg"), "--model", str(fer_checkpoint)])


def test_predict_script_reports_bad_images_and_keeps_going(fer_checkpoint, photos, tmp_path, capsys):
    """A broken link and a truncated JPEG are each reported (stderr and output record) while the other images are done;
    the exit status says some failed. A photo without a face is an empty answer, noted on stderr. Same-named images in two folders keep apart."""
    predict = load_predict_script()
    folder = tmp_path / "photos"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        shutil.copy(photos["single_face.jpg"], folder / name / "face.jpg")
    (folder / "dangling.jpg").symlink_to(tmp_path / "deleted.jpg")
    jpeg = Path(photos["single_face.jpg"]).read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    shutil.copy(photos["free-mountain-vector-01.jpg"], folder / "landscape.jpg")
    jsonl, table, annotated = tmp_path / "faces.jsonl", tmp_path / "faces.csv", tmp_path / "annotated"

    command = [str(folder), "--model", str(fer_checkpoint), "--annotate-dir", str(annotated)]
    assert predict.main([*command, "--output", str(jsonl)]) == 1
    errors = {Path(record["file"]).relative_to(folder).as_posix(): record["error"]
              for record in map(json.loads, jsonl.read_text().splitlines())}
    assert errors["a/face.jpg"] is None and errors["b/face.jpg"] is None
    assert errors["dangling.jpg"] == (
        f"No image file at '{folder / 'dangling.jpg'}' (a broken link to '{tmp_path / 'deleted.jpg'}').")
    assert errors["truncated.jpg"].startswith(f"'{folder / 'truncated.jpg'}' is a damaged or truncated image")
    assert errors["landscape.jpg"] is None
    stderr = capsys.readouterr().err
    for name in ("dangling.jpg", "truncated.jpg"):
        assert f"{folder / name}: {errors[name]}" in stderr
    assert f"{folder / 'landscape.jpg'}: no face found" in stderr
    assert "5 images, 2 faces, 2 unreadable" in stderr
    assert sorted(path.relative_to(annotated).as_posix() for path in annotated.rglob("*.png")) == [
        "a/face.jpg.png", "b/face.jpg.png"]

    assert predict.main([*command, "--output", str(table), "--no-pin"]) == 1
    rows = {row["file"]: row for row in csv.DictReader(table.open())}
    assert rows[str(folder / "truncated.jpg")]["error"] == errors["truncated.jpg"]
    assert rows[str(folder / "a" / "face.jpg")]["error"] == "" and rows[str(folder / "a" / "face.jpg")]["label"]

    # Results are written as they come: a run that stops at b/face.jpg (its annotated folder is blocked by a file)
    # keeps what it did before.
    shutil.rmtree(annotated)
    annotated.mkdir()
    (annotated / "b").write_text("in the way")
    with pytest.raises(FileExistsError):
        predict.main([*command, "--output", str(jsonl)])
    assert [Path(record["file"]).relative_to(folder).as_posix()
            for record in map(json.loads, jsonl.read_text().splitlines())] == ["a/face.jpg"]


def test_predict_script_checks_its_outputs_before_loading_the_model(fer_checkpoint, photos, tmp_path):
    """--output / --annotate-dir that cannot be written fail at once. The model folder here has a config.json no
    pipeline can load, so reaching the model would raise something else."""
    unloadable = tmp_path / "unloadable"
    shutil.copytree(fer_checkpoint, unloadable)
    (unloadable / "config.json").write_text(json.dumps({"model_type": "no_such_model"}))
    command = [str(photos["single_face.jpg"]), "--model", str(unloadable)]
    (tmp_path / "a_file").write_text("")
    for extra, message in (
        (["--output", str(tmp_path / "missing" / "faces.jsonl")], "No such file or directory"),
        (["--output", str(tmp_path)], "Is a directory"),
        (["--annotate-dir", str(tmp_path / "a_file")], "File exists"),
    ):
        with pytest.raises(OSError, match=rf"Cannot write '{tmp_path}.*': {message}\. --output must be a .jsonl or "
                                          r".csv file .*no image was processed"):
            load_predict_script().main([*command, *extra])
    assert not (tmp_path / "missing").exists()
    with pytest.raises(ValueError, match="no_such_model"):  # the model is reached when the outputs are fine
        load_predict_script().main([*command, "--output", str(tmp_path / "faces.jsonl")])


def load_predict_script():
    example = Path(__file__).resolve().parents[1] / "examples" / "predict.py"
    spec = importlib.util.spec_from_file_location("predict", example)
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    return predict


def test_missing_or_broken_model_folders_are_named(fer_checkpoint, tmp_path, monkeypatch):
    """A local path that holds no loadable model says which folder or file is wrong, not "Repo id must be ...".

    predict.py --model, the pipeline's pin_model and train.py --teacher_path all go through `check_model_folder`."""
    photo = tmp_path / "face.png"
    Image.new("RGB", (32, 32)).save(photo)
    missing = tmp_path / "runs" / "missing" / "trn"
    with pytest.raises(FileNotFoundError, match=re.escape(f"No model folder at '{missing}'")):
        load_predict_script().main([str(photo), "--model", str(missing)])
    with pytest.raises(FileNotFoundError, match="No model folder at '.*missing_pin'"):
        pipeline("facial-expression-recognition", model=str(fer_checkpoint), pin_model=str(tmp_path / "missing_pin"),
                 trust_remote_code=False)
    monkeypatch.chdir(tmp_path)
    for relative in ("./missing", "../missing", "runs/missing/trn", Path("missing")):
        with pytest.raises(FileNotFoundError, match="No model folder"):
            check_model_folder(relative)
    check_model_folder("owner/name")  # a Hub id: left to from_pretrained

    broken = tmp_path / "broken"
    shutil.copytree(fer_checkpoint, broken)
    with pytest.raises(NotADirectoryError, match="config.json is a file; expected a model folder"):
        check_model_folder(broken / "config.json")
    weights = (broken / "model.safetensors").read_bytes()
    for damaged in (b"", weights[: len(weights) // 2]):
        (broken / "model.safetensors").write_bytes(damaged)
        with pytest.raises(OSError, match=r"broken/model.safetensors is empty, truncated or not a safetensors file"):
            check_model_folder(broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="has config.json but no weights: model.safetensors is missing"):
        check_model_folder(broken)
    (broken / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="broken has no config.json"):
        load_predict_script().main([str(photo), "--model", str(broken)])
    check_model_folder(fer_checkpoint)  # a good folder passes


def test_pipeline_aligns_to_the_template_and_colour_the_model_was_trained_with(tmp_path, photos):
    """A model trained on grayscale FER2013 crops: its saved processor names the measured template and grayscale,
    and the pipeline aligns every face to that template (not ArcFace's) and feeds gray pixels."""
    model = TRNForImageClassification(tiny_trn_config(list(FER2013_CLASSES)))
    model.save_pretrained(tmp_path / "trn")
    image_processor(model.config.image_size, "fer2013", grayscale=True).save_pretrained(tmp_path / "trn")
    fer = pipeline("facial-expression-recognition", model=str(tmp_path / "trn"), pin_model=False)
    assert fer.image_processor.do_grayscale and fer.image_processor.crop_style == "fer2013"
    np.testing.assert_allclose(fer.crop_style, landmark_template("fer2013"))
    inputs = fer.preprocess(str(photos["single_face.jpg"]))
    crop = inputs["crops"][0]
    # The similarity fit puts the detected points near the template (the face's own shape is not the template's).
    assert np.abs(crop.normalized_landmarks - np.asarray(landmark_template("fer2013"))).max() < 0.08
    pixels = inputs["pixel_values"]
    np.testing.assert_allclose(*(pixels[:, c] * fer.image_processor.image_std[c] + fer.image_processor.image_mean[c]
                                 for c in (0, 1)), atol=1e-5)
