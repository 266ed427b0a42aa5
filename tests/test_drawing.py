"""`poi_hf.faces.annotate`: boxes clipped to the image, captions kept inside it, faces numbered from 1."""

import numpy as np
import pytest
from PIL import Image

from poi_hf.faces import annotate, face_color
from poi_hf.faces.drawing import face_caption

SIZE = (240, 160)


def make_face(x_min: float, y_min: float, x_max: float, y_max: float, confidence: float | None = 0.5) -> dict:
    """A pipeline face dict with its landmarks at the box centre."""
    centre = [(x_min + x_max) / 2, (y_min + y_max) / 2]
    return {"box": {"xmin": x_min, "ymin": y_min, "xmax": x_max, "ymax": y_max}, "landmarks": [centre] * 5,
            "label": "happiness", "score": 0.8, "confidence": confidence}


def caption_pixels(face: dict) -> np.ndarray:
    """Where the white caption text of ``face``, drawn alone on a black image, lands: (N, 2) (row, column)."""
    pixels = np.asarray(annotate(Image.new("RGB", SIZE), [face]))
    return np.argwhere((pixels == 255).all(axis=-1))


def test_boxes_reaching_past_the_image_are_drawn_along_its_border():
    width, height = SIZE
    pixels = np.asarray(annotate(Image.new("RGB", SIZE), [make_face(-40, -30, width + 40, height + 30)]))
    for row, column in ((height // 2, 0), (height // 2, width - 1), (height - 1, width // 2), (0, width - 1)):
        assert tuple(pixels[row, column]) == face_color(0), (row, column)


@pytest.mark.parametrize("box", [
    (-30, -20, 50, 60),  # top-left corner, partly outside
    (200, -10, 280, 70),  # top-right corner, partly outside
    (190, 120, 260, 190),  # bottom-right corner, partly outside
    (-20, 110, 60, 175),  # bottom-left corner, partly outside
    (100, -10, 160, 170),  # taller than the image: no room above or below
    (215, 40, 239, 100),  # at the right edge: the caption is wider than the space left of it
])
def test_captions_of_faces_at_the_edges_stay_whole_inside_the_image(box):
    reference = caption_pixels(make_face(40, 60, 120, 120))  # a face in the middle: nothing to clip
    caption = caption_pixels(make_face(*box))
    assert len(caption) == len(reference)  # every pixel of the text is in the image
    np.testing.assert_array_equal(np.ptp(caption, axis=0), np.ptp(reference, axis=0))


def test_faces_are_numbered_from_one_left_to_right():
    faces = [make_face(10, 60, 60, 120), make_face(150, 60, 200, 120, confidence=None)]
    assert face_caption(1, faces[0]) == "#1 happiness 80% conf 0.50"
    assert face_caption(2, faces[1]) == "#2 happiness 80%"  # a classifier without an uncertainty head
    pixels = np.asarray(annotate(Image.new("RGB", SIZE), faces))
    assert tuple(pixels[90, 10]) == face_color(0) and tuple(pixels[90, 200]) == face_color(1)
