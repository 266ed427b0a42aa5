"""Loaders on tiny fixtures that reproduce each published format: headers, separators, 1-based labels, the RAF-DB
label file without a trailing newline, FERPlus empty names and NF rows, AffectNet ';' landmarks and .npy files."""

import codecs
import logging
import os
import shutil
import sys

import numpy as np
import pytest
import torch
from datasets import Image
from PIL import Image as PILImage

from poi_hf.data import (
    AFFECTNET_CLASSES,
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    RAFDB_CLASSES,
    DatasetFormatError,
    FEREvalTransform,
    ferplus_target,
    load_affectnet,
    load_fer2013,
    load_fer_dataset,
    load_ferplus,
    load_imagefolder,
    load_rafdb,
)
from poi_hf.data._common import landmarks_68_to_5


def save_image(path, size=(100, 100), seed=0, mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    PILImage.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as handle:
        handle.write(text)


# ---------------------------------------------------------------- RAF-DB

RAF_TRAIN = [("train_00001.jpg", 5), ("train_00002.jpg", 1), ("train_00003.jpg", 7), ("train_00004.jpg", 4)]
RAF_TEST = [("test_0001.jpg", 2), ("test_0002.jpg", 6)]


@pytest.fixture
def rafdb(tmp_path):
    root = tmp_path / "basic"
    rows = RAF_TRAIN + RAF_TEST
    write(root / "EmoLabel/list_patition_label.txt", "\n".join(f"{n} {y}" for n, y in rows))  # no final newline
    for i, (name, _) in enumerate(rows):
        save_image(str(root / "Image/aligned" / name.replace(".jpg", "_aligned.jpg")), seed=i)
    return root


def test_rafdb(rafdb):
    dataset = load_rafdb(rafdb)
    assert {split: len(data) for split, data in dataset.items()} == {"train": 4, "test": 2}
    assert dataset["train"].features["label"].names == list(RAFDB_CLASSES)
    assert dataset["train"]["label"][:] == [label - 1 for _, label in RAF_TRAIN]
    assert dataset["test"]["label"][:] == [1, 5]
    image = dataset["train"][0]["image"]
    assert image.size == (100, 100) and image.filename.endswith("train_00001_aligned.jpg")


def test_rafdb_eac_noise_file_gives_exactly_its_labels(rafdb, caplog):
    noisy = [("train_00001.jpg", 1), ("train_00002.jpg", 1), ("train_00003.jpg", 2), ("train_00004.jpg", 4)]
    write(rafdb / "EmoLabel/noise01.txt", "".join(f"{name} {label}\n" for name, label in noisy))
    with caplog.at_level(logging.INFO):
        dataset = load_fer_dataset("rafdb", rafdb, label_file="noise01.txt")
    assert dataset["train"]["label"][:] == [label - 1 for _, label in noisy]
    assert dataset["train"]["clean_label"][:] == [label - 1 for _, label in RAF_TRAIN]
    assert dataset["test"]["label"][:] == [1, 5] and "clean_label" not in dataset["test"].column_names
    assert "0.5000" in caplog.text  # 2 of 4 labels differ


@pytest.mark.parametrize(
    "line, message",
    [
        ("train_00002.jpg 8", "outside 1..7"),
        ("train_00002.jpg five", "not an integer"),
        ("train_00002.jpg", "expected '<image name> <label>'"),
        ("val_00002.jpg 3", "neither 'train_' nor 'test_'"),
        ("train_00009.jpg 3", "missing image"),
    ],
)
def test_rafdb_bad_rows_name_file_and_line(rafdb, line, message, caplog):
    rows = [f"{name} {label}" for name, label in RAF_TRAIN + RAF_TEST]
    rows[1] = line
    write(rafdb / "EmoLabel/list_patition_label.txt", "\n".join(rows))
    with pytest.raises(DatasetFormatError, match=rf"list_patition_label.txt, line 2: .*{message}"):
        load_rafdb(rafdb)
    with caplog.at_level(logging.WARNING):
        dataset = load_rafdb(rafdb, skip_bad=True)
    assert len(dataset["train"]) == 3 and "Skipped 1 bad record(s)" in caplog.text


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_rafdb_corrupt_image(rafdb, damage):
    path = rafdb / "Image/aligned/train_00003_aligned.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not a jpeg" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match=r"line 3: corrupt image .*train_00003_aligned.jpg"):
        load_rafdb(rafdb)


# ---------------------------------------------------------------- FER2013 / FERPlus

def fer_pixels(seed):
    return np.random.default_rng(seed).integers(0, 256, 48 * 48)


FER_ROWS = [(3, "Training"), (0, "Training"), (6, "PublicTest"), (5, "PrivateTest"), (2, "Training"), (1, "Training")]
FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
FERPLUS_VOTES = [
    (0, [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # happiness, unanimous
    (1, [4, 0, 0, 1, 5, 0, 0, 0, 0, 0]),  # anger 5/9 after dropping the single vote: majority kept
    (2, [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),  # NF: dropped
    (3, [2, 0, 6, 0, 0, 0, 2, 0, 0, 0]),  # surprise
    (None, [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),  # empty image name: dropped
    (5, [3, 0, 0, 0, 0, 0, 0, 7, 0, 0]),  # contempt
]


@pytest.fixture
def fer_dir(tmp_path):
    lines = ["emotion,pixels,Usage"]
    lines += [f"{emotion},{' '.join(map(str, fer_pixels(i)))},{usage}" for i, (emotion, usage) in enumerate(FER_ROWS)]
    write(tmp_path / "fer2013.csv", "\n".join(lines) + "\n")
    lines = [FERPLUS_HEADER]
    for (index, votes), (_, usage) in zip(FERPLUS_VOTES, FER_ROWS):
        name = "" if index is None else f"fer{index:07d}.png"
        lines.append(f"{usage},{name}," + ",".join(map(str, votes)))
    write(tmp_path / "fer2013new.csv", "\n".join(lines) + "\n")
    return tmp_path


def test_fer2013(fer_dir):
    dataset = load_fer2013(fer_dir)
    assert {split: len(data) for split, data in dataset.items()} == {"train": 4, "validation": 1, "test": 1}
    assert dataset["train"].features["label"].names == list(FER2013_CLASSES)
    assert dataset["train"]["label"][:] == [3, 0, 2, 1]
    image = dataset["validation"][0]["image"]
    assert image.mode == "L" and image.size == (48, 48)
    np.testing.assert_array_equal(np.asarray(image).ravel(), fer_pixels(2))


@pytest.mark.parametrize(
    "row, message",
    [
        ("3,1 2 3,Training", "3 pixel values, expected 2304"),
        ("9,{pixels},Training", "emotion 9 is outside 0..6"),
        ("3,{pixels},Train", "Usage 'Train'"),
        ("3,{pixels}", "2 fields, expected 3"),
    ],
)
def test_fer2013_bad_rows(fer_dir, row, message):
    lines = (fer_dir / "fer2013.csv").read_text().splitlines()
    lines[3] = row.format(pixels=" ".join(["7"] * 2304))
    write(fer_dir / "fer2013.csv", "\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"fer2013.csv, line 4: {message}"):
        load_fer2013(fer_dir)
    assert "validation" not in load_fer2013(fer_dir, skip_bad=True)  # its only row was the bad one


def test_fer2013_wrong_header(fer_dir):
    text = (fer_dir / "fer2013.csv").read_text().replace("emotion,pixels,Usage", "label,pixels,Usage", 1)
    write(fer_dir / "fer2013.csv", text)
    with pytest.raises(DatasetFormatError, match="fer2013.csv, line 1: header"):
        load_fer2013(fer_dir)


KAGGLE_FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture
def fer_folders(tmp_path):
    """The Kaggle FER2013 release: train/ and test/ (PublicTest and PrivateTest mixed), one image per class."""
    for index, folder in enumerate(KAGGLE_FOLDERS):
        save_image(str(tmp_path / "train" / folder / f"Training_{index}.jpg"), (48, 48), index, "L")
        save_image(str(tmp_path / "test" / folder / f"PublicTest_{index}.jpg"), (48, 48), 10 + index, "L")
        save_image(str(tmp_path / "test" / folder / f"PrivateTest_{index}.jpg"), (48, 48), 20 + index, "L")
    return tmp_path


def test_fer2013_kaggle_folders_split_test_by_file_name(fer_folders):
    dataset = load_fer_dataset("fer2013", fer_folders)
    assert {split: len(data) for split, data in dataset.items()} == {"train": 7, "validation": 7, "test": 7}
    names = dataset["train"].features["label"].names
    assert names == list(FER2013_CLASSES)  # the ICML order, not the sorted folder order
    for split, prefix in (("validation", "PublicTest_"), ("test", "PrivateTest_")):
        paths = dataset[split].cast_column("image", Image(decode=False))["image"]
        assert all(os.path.basename(image["path"]).startswith(prefix) for image in paths)
        for image, label in zip(paths, dataset[split]["label"]):
            folder = os.path.basename(os.path.dirname(image["path"]))
            assert names[label] == {"angry": "anger", "happy": "happiness", "sad": "sadness"}.get(folder, folder)
    assert dataset["test"][0]["image"].mode == "L"


def test_fer2013_kaggle_folders_with_validation_folder(fer_folders):
    for path in (fer_folders / "test").rglob("PublicTest_*.jpg"):
        target = fer_folders / "validation" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    dataset = load_fer2013(fer_folders)
    assert {split: len(data) for split, data in dataset.items()} == {"train": 7, "validation": 7, "test": 7}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: shutil.rmtree(root / "test"), r"no test/ folder"),
        (lambda root: shutil.rmtree(root / "train" / "sad"), r"train: class folders .* \(missing: \['sad'\]\)"),
        (lambda root: (root / "train" / "happy").rename(root / "train" / "joy"), r"unknown: \['joy'\]"),
        (lambda root: shutil.rmtree(root / "train"), r"neither fer2013.csv .* nor a train/ folder"),
        (lambda root: (root / "train" / "fear" / "Training_2.jpg").write_bytes(b"not a jpeg"), r"corrupt image .*Training_2"),
    ],
)
def test_fer2013_kaggle_folders_errors_name_the_folder(fer_folders, damage, message):
    damage(fer_folders)
    with pytest.raises(DatasetFormatError, match=message):
        load_fer2013(fer_folders)


def test_fer2013_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_fer2013(tmp_path / "nowhere")


def test_ferplus_majority(fer_dir):
    dataset = load_ferplus(fer_dir)
    assert {split: len(data) for split, data in dataset.items()} == {"train": 3, "test": 1}  # NF, empty dropped
    assert dataset["train"].features["label"].names == list(FERPLUS_CLASSES)
    assert [FERPLUS_CLASSES[i] for i in dataset["train"]["label"][:]] == ["happiness", "anger", "contempt"]
    np.testing.assert_allclose(dataset["train"]["soft_labels"][1], [0.4, 0, 0, 0.1, 0.5, 0, 0, 0], atol=1e-6)
    assert dataset["train"]["votes"][1] == [4, 0, 0, 1, 5, 0, 0, 0]
    np.testing.assert_array_equal(np.asarray(dataset["train"][1]["image"]).ravel(), fer_pixels(1))
    assert FERPLUS_CLASSES[dataset["test"]["label"][0]] == "surprise"


def test_ferplus_modes_and_seven_classes(fer_dir):
    dataset = load_ferplus(fer_dir, label_mode="crossentropy", num_classes=7)
    assert dataset["train"].features["label"].names == list(FERPLUS_CLASSES[:7])
    assert len(dataset["train"]) == 2  # contempt dropped
    np.testing.assert_allclose(dataset["train"]["soft_labels"][1], [4 / 9, 0, 0, 0, 5 / 9, 0, 0], atol=1e-6)
    assert len(dataset["train"]["votes"][0]) == 7
    multi = load_ferplus(fer_dir, label_mode="multi_target")
    np.testing.assert_allclose(multi["train"]["soft_labels"][1], [0.5, 0, 0, 0, 0.5, 0, 0, 0], atol=1e-6)


def official_process_data(emotion_raw, mode):
    """Oracle: FERPlus/src/ferplus.py ``_process_data`` + its reader's unknown/NF filter (MIT, Microsoft)."""
    size = len(emotion_raw)
    emotion_unknown = [0.0] * size
    emotion_unknown[-2] = 1.0
    for i in range(size):
        if emotion_raw[i] < 1.0 + sys.float_info.epsilon:
            emotion_raw[i] = 0.0
    sum_list = sum(emotion_raw)
    emotion = [0.0] * size
    if mode == "majority":
        maxval = max(emotion_raw)
        if maxval > 0.5 * sum_list:
            emotion[np.argmax(emotion_raw)] = maxval
        else:
            emotion = emotion_unknown
    elif mode in ("probability", "crossentropy"):
        sum_part, count, valid_emotion = 0, 0, True
        while sum_part < 0.75 * sum_list and count < 3 and valid_emotion:
            maxval = max(emotion_raw)
            for i in range(size):
                if emotion_raw[i] == maxval:
                    emotion[i] = maxval
                    emotion_raw[i] = 0
                    sum_part += emotion[i]
                    count += 1
                    if i >= 8:
                        valid_emotion = False
                        if sum(emotion) > maxval:
                            emotion[i] = 0
                            count -= 1
                        break
        if sum(emotion) <= 0.5 * sum_list or count > 3:
            emotion = emotion_unknown
    elif mode == "multi_target":
        for i in range(size):
            if emotion_raw[i] >= 0.3 * sum_list:
                emotion[i] = emotion_raw[i]
        if sum(emotion) <= 0.5 * sum_list:
            emotion = emotion_unknown
    emotion = [float(i) / sum(emotion) for i in emotion]
    if np.argmax(emotion) >= 8:
        return None
    return np.array(emotion[:-2]) / sum(emotion[:-2])


@pytest.mark.parametrize("mode", ["majority", "crossentropy", "multi_target"])
def test_ferplus_target_matches_official_reader(mode):
    rng = np.random.default_rng(0)
    for _ in range(1500):
        votes = rng.multinomial(10, rng.dirichlet(np.full(10, 0.3)))
        expected = official_process_data([float(v) for v in votes], mode)
        got = ferplus_target(votes, mode)
        assert (got is None) == (expected is None), votes
        if got is not None:
            if mode == "crossentropy":
                np.testing.assert_allclose(got, expected, atol=1e-9)
            else:  # majority: one-hot; multi_target: the official training target spreads evenly over the kept
                np.testing.assert_array_equal(got > 0, expected > 0)


def test_ferplus_name_must_match_row(fer_dir):
    text = (fer_dir / "fer2013new.csv").read_text().replace("fer0000003.png", "fer0000004.png")
    write(fer_dir / "fer2013new.csv", text)
    with pytest.raises(DatasetFormatError, match=r"fer2013new.csv, line 5: image name 'fer0000004.png'"):
        load_ferplus(fer_dir)


# ---------------------------------------------------------------- AffectNet

AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
)


def ibug_points(box, seed):
    x, y, w, h = box
    unit = np.random.default_rng(seed).uniform(0.1, 0.9, size=(68, 2))
    return unit * [w, h] + [x, y]


@pytest.fixture
def affectnet_csv(tmp_path):
    rows = {"training.csv": [1, 7, 8, 10, 3], "validation.csv": [0, 9, 6]}
    for name, expressions in rows.items():
        lines = [AFFECTNET_HEADER]
        for i, expression in enumerate(expressions):
            path = f"{100 + i}/{name[:5]}{i:03d}.jpg"
            save_image(str(tmp_path / "Manually_Annotated_Images" / path), size=(80, 60), seed=i)
            box = (10 + i, 5, 50, 40)
            points = ";".join(f"{v:.2f}" for v in ibug_points(box, i).ravel())
            lines.append(f"{path},{box[0]},{box[1]},{box[2]},{box[3]},{points},{expression},0.5,-0.25")
        write(tmp_path / name, "\n".join(lines) + "\n")
    return tmp_path


def test_affectnet_csv(affectnet_csv):
    dataset = load_affectnet(affectnet_csv)
    assert {split: len(data) for split, data in dataset.items()} == {"train": 3, "test": 2}
    assert dataset["train"].features["label"].names == list(AFFECTNET_CLASSES)
    assert dataset["train"]["label"][:] == [1, 7, 3] and dataset["test"]["label"][:] == [0, 6]
    row = dataset["train"][2]
    box = (14, 5, 50, 40)
    assert row["face_box"] == list(box) and row["image"].size == (80, 60)
    expected = (landmarks_68_to_5(ibug_points(box, 4)) - box[:2]) / box[2:]
    np.testing.assert_allclose(row["landmarks"], expected, atol=1e-3)
    assert len(load_affectnet(affectnet_csv, num_classes=7)["train"]) == 2  # contempt left out

    # The eval transform crops the face box: its output is the box region resized.
    output = FEREvalTransform(image_size=50, mean=(0, 0, 0), std=(1, 1, 1))(dataset["train"][2:3])
    crop = np.asarray(row["image"].crop((14, 5, 64, 45)).resize((50, 50), PILImage.BILINEAR), dtype=np.float32)
    got = output["pixel_values"][0].permute(1, 2, 0).numpy() * 255
    assert np.abs(got - crop)[5:-5, 5:-5].mean() < 12  # same content (resampling filters differ)


@pytest.mark.parametrize(
    "field, value, message",
    [
        (6, "11", "expression 11 is outside 0..10"),
        (5, "1;2;3", "3 landmark values, expected 136"),
        (3, "wide", "not numbers"),
        (0, "100/missing.jpg", "missing image"),
    ],
)
def test_affectnet_bad_rows(affectnet_csv, field, value, message):
    lines = (affectnet_csv / "validation.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[field] = value
    lines[1] = ",".join(fields)
    write(affectnet_csv / "validation.csv", "\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"validation.csv, line 2: .*{message}"):
        load_affectnet(affectnet_csv)
    assert len(load_affectnet(affectnet_csv, skip_bad=True)["test"]) == 1


def test_affectnet_npy_release(tmp_path):
    for folder, expressions in {"train_set": [2, 7, 9], "val_set": [4]}.items():
        for i, expression in enumerate(expressions):
            save_image(str(tmp_path / folder / "images" / f"{i}.jpg"), size=(64, 64), seed=i)
            annotations = tmp_path / folder / "annotations"
            os.makedirs(annotations, exist_ok=True)
            np.save(annotations / f"{i}_exp.npy", np.array(str(expression)))  # stored as a string, as released
            np.save(annotations / f"{i}_lnd.npy", ibug_points((0, 0, 64, 64), i).ravel().astype(str))
    dataset = load_fer_dataset("affectnet", tmp_path, num_classes=7)
    assert dataset["train"]["label"][:] == [2] and dataset["test"]["label"][:] == [4]
    assert "face_box" not in dataset["train"].column_names
    np.testing.assert_allclose(dataset["train"]["landmarks"][0], landmarks_68_to_5(ibug_points((0, 0, 64, 64), 0)) / 64,
                               atol=1e-5)
    os.remove(tmp_path / "val_set/images/0.jpg")
    with pytest.raises(DatasetFormatError, match=r"val_set: missing image .*0.jpg"):
        load_affectnet(tmp_path)


# ---------------------------------------------------------------- image folders and the registry

def test_imagefolder(tmp_path):
    for split, folders in {"train": ["happy", "Sad", "angry"], "test": ["happy", "Sad", "angry"]}.items():
        for j, folder in enumerate(folders):
            for i in range(2):
                save_image(str(tmp_path / split / folder / f"{i}.png"), size=(20, 20), seed=i + j)
    dataset = load_imagefolder(tmp_path)
    assert dataset["train"].features["label"].names == ["sadness", "anger", "happiness"]  # sorted: Sad, angry, happy
    assert len(dataset["train"]) == 6 and len(dataset["test"]) == 6
    paths = dataset["train"].cast_column("image", Image(decode=False))["image"][:]
    folders = [os.path.basename(os.path.dirname(image["path"])) for image in paths]
    names = [dataset["train"].features["label"].names[label] for label in dataset["train"]["label"][:]]
    assert names == [{"happy": "happiness", "Sad": "sadness", "angry": "anger"}[folder] for folder in folders]

    (tmp_path / "train/happy/0.png").write_bytes(b"broken")
    with pytest.raises(DatasetFormatError, match=r"corrupt image .*happy/0.png"):
        load_imagefolder(tmp_path)
    assert len(load_imagefolder(tmp_path, skip_bad=True)["train"]) == 5


@pytest.mark.parametrize(
    "fixture, files, loader",
    [
        ("rafdb", ["EmoLabel/list_patition_label.txt"], load_rafdb),
        ("fer_dir", ["fer2013.csv"], load_fer2013),
        ("fer_dir", ["fer2013.csv", "fer2013new.csv"], load_ferplus),
        ("affectnet_csv", ["training.csv", "validation.csv"], load_affectnet),
    ],
)
def test_label_files_with_a_byte_order_mark_load(request, fixture, files, loader):
    """Files saved by Windows tools start with a UTF-8 BOM; they load exactly like the plain ones."""
    root = request.getfixturevalue(fixture)
    expected = {split: data["label"][:] for split, data in loader(root).items()}
    for name in files:
        (root / name).write_bytes(codecs.BOM_UTF8 + (root / name).read_bytes())
    assert {split: data["label"][:] for split, data in loader(root).items()} == expected


def test_registry(rafdb):
    dataset = load_fer_dataset("rafdb", rafdb, noise_rate=0.5, noise_seed=0)
    assert "clean_label" in dataset["train"].column_names
    assert sum(a != b for a, b in zip(dataset["train"]["label"][:], dataset["train"]["clean_label"][:])) == 2
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_fer_dataset("ckplus", rafdb)
    with pytest.raises(ValueError, match="needs data_dir"):
        load_fer_dataset("rafdb")
    with pytest.raises(ValueError, match=r"noise_rate must be a fraction of the training labels in \[0, 1\], got -0.1"):
        load_fer_dataset("rafdb", rafdb, noise_rate=-0.1)


def test_registry_synfer_through_transforms(tmp_path):
    from poi_hf.data import CROP_STYLES, poi_collate, set_fer_transforms

    sizes = dict(num_train=8, num_validation=2, num_test=2, image_size=32)
    plain = load_fer_dataset("synfer", tmp_path, **sizes)["train"]
    dataset = load_fer_dataset("synfer", tmp_path, noise_rate=0.25, **sizes)
    assert sum(a != b for a, b in zip(dataset["train"]["label"][:], plain["label"][:])) == 2
    assert dataset["train"]["clean_label"][:] == plain["clean_label"][:]  # SynFER's own clean labels are kept
    set_fer_transforms(dataset, image_size=24, crop_style=CROP_STYLES["synfer"])
    batch = poi_collate([dataset["train"][i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 3, 24, 24) and batch["true_distribution"].shape == (4, 7)
    assert batch["clean_labels"].dtype == torch.int64 and batch["landmarks"].shape == (4, 5, 2)


def test_noisy_ferplus_drops_the_clean_votes(fer_dir):
    """FERPlus votes describe the clean label: a noisy training split must not carry them (POI-R trains on
    ``soft_labels`` when they exist, the baselines on ``label`` only)."""
    dataset = load_fer_dataset("ferplus", fer_dir, noise_rate=1.0, noise_seed=0)
    assert "soft_labels" not in dataset["train"].column_names and "votes" not in dataset["train"].column_names
    assert {"soft_labels", "votes"} <= set(dataset["test"].column_names)
    assert "soft_labels" in load_fer_dataset("ferplus", fer_dir)["train"].column_names  # clean runs keep them
