"""Drawing pipeline results: face boxes, landmarks, top label and TRN confidence."""

from typing import Any

from PIL import Image, ImageDraw, ImageFont

PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))


def face_color(index: int) -> tuple[int, int, int]:
    """The colour of face ``index`` (cycles through `PALETTE`), shared by the image and the charts."""
    return PALETTE[index % len(PALETTE)]


def annotate(image: Image.Image, faces: list[dict[str, Any]]) -> Image.Image:
    """Draw each face of a ``facial-expression-recognition`` result on a copy of ``image``.

    Args:
        image: the RGB image the pipeline saw (coordinates refer to it).
        faces: the pipeline's list of face dicts (``box``, ``landmarks``, ``label``, ``score``, ``confidence``).

    Returns:
        An RGB copy with numbered boxes, landmarks and "``#i label probability conf α``" captions (no ``conf`` part
        for a face whose ``confidence`` is ``None``).
    """
    annotated = image.convert("RGB")  # always a copy
    draw = ImageDraw.Draw(annotated)
    line = max(2, round(max(image.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 70)))
    for index, face in enumerate(faces):
        color = face_color(index)
        box = face["box"]
        draw.rectangle([box["xmin"], box["ymin"], box["xmax"], box["ymax"]], outline=color, width=line)
        for x, y in face["landmarks"]:
            draw.ellipse([x - line, y - line, x + line, y + line], fill=color)
        caption = f"#{index + 1} {face['label']} {face['score']:.0%}"
        if face.get("confidence") is not None:  # classifiers without an uncertainty head have none
            caption += f" conf {face['confidence']:.2f}"
        # Caption above the box, or below it when the box touches the top of the image.
        anchor_xy, anchor = (box["xmin"], box["ymin"]), "lb"
        if draw.textbbox(anchor_xy, caption, font=font, anchor=anchor)[1] < 0:
            anchor_xy, anchor = (box["xmin"], box["ymax"]), "lt"
        left, top, right, bottom = draw.textbbox(anchor_xy, caption, font=font, anchor=anchor)
        draw.rectangle([left - line, top - line, right + line, bottom + line], fill=color)
        draw.text(anchor_xy, caption, fill=(255, 255, 255), font=font, anchor=anchor)
    return annotated
