"""AffectNet as the official download unpacks it: Manually_Annotated_file_lists/ (validation.csv without a header
row) next to Manually_Annotated_Images/ or Manually_Annotated/Manually_Annotated_Images/; and the errors for a
folder that holds none of the releases."""

import os

import numpy as np
import pytest
from test_data_loaders import AFFECTNET_HEADER, ibug_points, save_image, write

from poi_hf.data import DatasetFormatError, load_affectnet, load_fer_dataset
from poi_hf.data._common import landmarks_68_to_5

NESTED_IMAGES = os.path.join("Manually_Annotated", "Manually_Annotated_Images")
EXPRESSIONS = {"training.csv": [1, 7, 8, 10, 3], "validation.csv": [0, 9, 6]}  # 8-10: none, uncertain, no-face


def make_download(root, image_folder="Manually_Annotated_Images", list_folder="Manually_Annotated_file_lists"):
    """The download's lists and images under ``root``; like the release, validation.csv has no header row."""
    for name, expressions in EXPRESSIONS.items():
        lines = [AFFECTNET_HEADER] if name == "training.csv" else []
        for i, expression in enumerate(expressions):
            path = f"{100 + i}/{name[:5]}{i:03d}.jpg"
            save_image(str(root / image_folder / path), size=(80, 60), seed=i)
            box = (10 + i, 5, 50, 40)
            points = ";".join(f"{v:.2f}" for v in ibug_points(box, i).ravel())
            lines.append(f"{path},{box[0]},{box[1]},{box[2]},{box[3]},{points},{expression},0.5,-0.25")
        write(root / list_folder / name, "\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("image_folder", ["Manually_Annotated_Images", NESTED_IMAGES])
@pytest.mark.parametrize("data_dir", ["root", "lists folder"])
def test_affectnet_download_loads(tmp_path, image_folder, data_dir):
    root = make_download(tmp_path, image_folder)
    folder = root if data_dir == "root" else root / "Manually_Annotated_file_lists"
    dataset = load_fer_dataset("affectnet", folder)
    assert dataset["train"]["label"][:] == [1, 7, 3]
    assert dataset["test"]["label"][:] == [0, 6]  # the header-less first row is a record, not a header
    row = dataset["test"][0]
    assert row["image"].filename == str(root / image_folder / "100/valid000.jpg")
    box = (10, 5, 50, 40)
    assert row["face_box"] == list(box)
    np.testing.assert_allclose(row["landmarks"], (landmarks_68_to_5(ibug_points(box, 0)) - box[:2]) / box[2:],
                               atol=1e-3)
    assert load_affectnet(folder, num_classes=7)["train"]["label"][:] == [1, 3]  # contempt left out


def test_affectnet_lists_directly_in_data_dir_with_nested_images(tmp_path):
    root = make_download(tmp_path, NESTED_IMAGES, list_folder="")
    assert load_affectnet(root)["test"]["label"][:] == [0, 6]


def test_affectnet_missing_or_empty_folder_names_the_layouts(tmp_path):
    layouts = r"looked for Manually_Annotated_file_lists/training.csv .* train_set/ and val_set/"
    with pytest.raises(FileNotFoundError, match=rf"AffectNet folder .*nowhere' does not exist \({layouts}"):
        load_affectnet(tmp_path / "nowhere")
    with pytest.raises(DatasetFormatError, match=rf"holds no AffectNet release \({layouts}.*\); it is empty"):
        load_affectnet(tmp_path)
    write(tmp_path / "README.txt", "AffectNet\n")
    with pytest.raises(DatasetFormatError, match=r"it holds \['README.txt'\]"):
        load_fer_dataset("affectnet", tmp_path)


def test_affectnet_lists_without_images_name_the_folders_looked_for(tmp_path):
    make_download(tmp_path)
    os.rename(tmp_path / "Manually_Annotated_Images", tmp_path / "images")
    with pytest.raises(DatasetFormatError, match=r"no image folder was found: looked for .*Manually_Annotated_Images"):
        load_affectnet(tmp_path)
    with pytest.raises(DatasetFormatError, match=r"looked for \[.*'.*photos'\]"):
        load_affectnet(tmp_path, image_dir="photos")
    assert load_affectnet(tmp_path, image_dir="images")["test"]["label"][:] == [0, 6]


def test_affectnet_wrong_header_still_fails(tmp_path):
    make_download(tmp_path)
    path = tmp_path / "Manually_Annotated_file_lists/training.csv"
    path.write_text(path.read_text().replace("expression,", "emotion,", 1))
    with pytest.raises(DatasetFormatError, match=r"training.csv, line 1: header .*'emotion'.* is not the expected"):
        load_affectnet(tmp_path)
