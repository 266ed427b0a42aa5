"""Drawing pipeline results: face boxes, landmarks, top label and TRN confidence."""

from typing import Any

from PIL import Image, ImageDraw, ImageFont

PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))


def face_color(index: int) -> tuple[int, int, int]:
    """The colour of face ``index`` (cycles through `PALETTE`), shared by the image and the charts."""
    return PALETTE[index % len(PALETTE)]


def face_caption(number: int, face: dict[str, Any]) -> str:
    """``"#number label probability conf α"`` (no ``conf`` part when ``confidence`` is ``None``). Faces are numbered
    from 1, left to right, as in the Space's table and chart."""
    caption = f"#{number} {face['label']} {face['score']:.0%}"
    if face.get("confidence") is not None:  # classifiers without an uncertainty head have none
        caption += f" conf {face['confidence']:.2f}"
    return caption


def _clip_box(box: dict[str, float], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A pipeline ``box`` as pixel corners inside the image: detectors report boxes of faces at an image edge that
    reach past it, and their outline would not be seen."""
    width, height = image_size
    return (min(max(round(box["xmin"]), 0), width - 1), min(max(round(box["ymin"]), 0), height - 1),
            min(max(round(box["xmax"]), 0), width - 1), min(max(round(box["ymax"]), 0), height - 1))


def _place_caption(box: tuple[int, int, int, int], size: tuple[int, int],
                   image_size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of a ``size`` caption for a clipped ``box``: above the box, else below it, else inside its top;
    then shifted into the image (left at the right edge), so a face at an edge keeps its caption in view."""
    (x_min, y_min, _, y_max), (width, height), (image_width, image_height) = box, size, image_size
    if y_min - height >= 0:
        y = y_min - height
    elif y_max + height <= image_height:
        y = y_max
    else:
        y = y_min
    return max(0, min(x_min, image_width - width)), max(0, min(y, image_height - height))


def annotate(image: Image.Image, faces: list[dict[str, Any]]) -> Image.Image:
    """Draw each face of a ``facial-expression-recognition`` result on a copy of ``image``.

    Args:
        image: the RGB image the pipeline saw (coordinates refer to it).
        faces: the pipeline's list of face dicts (``box``, ``landmarks``, ``label``, ``score``, ``confidence``).

    Returns:
        An RGB copy with boxes (clipped to the image), landmarks and `face_caption` captions kept inside the image.
    """
    annotated = image.convert("RGB")  # always a copy
    draw = ImageDraw.Draw(annotated)
    line = max(2, round(max(image.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 70)))
    for number, face in enumerate(faces, start=1):
        color = face_color(number - 1)
        box = _clip_box(face["box"], annotated.size)
        draw.rectangle(box, outline=color, width=line)
        for x, y in face["landmarks"]:
            draw.ellipse([x - line, y - line, x + line, y + line], fill=color)
        caption = face_caption(number, face)
        _, _, text_width, text_height = draw.textbbox((0, 0), caption, font=font, anchor="lt")
        size = (text_width + 2 * line, text_height + 2 * line)  # the text and a margin of one line width
        x, y = _place_caption(box, size, annotated.size)
        draw.rectangle([x, y, x + size[0] - 1, y + size[1] - 1], fill=color)
        draw.text((x + line, y + line), caption, fill=(255, 255, 255), font=font, anchor="lt")
    return annotated
