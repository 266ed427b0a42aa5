"""Contact sheet of SynFER samples: image with landmarks, true distribution as bars, clean and training labels."""

from __future__ import annotations

from datasets import Dataset
from PIL import Image, ImageDraw, ImageFont

LANDMARK_COLOURS = ((0, 200, 255), (0, 120, 255), (255, 220, 0), (255, 60, 60), (255, 0, 200))
BAR_HEIGHT = 44
TEXT_HEIGHT = 26


def contact_sheet(dataset: Dataset, num: int = 24, columns: int = 6, scale: int = 3) -> Image.Image:
    """Tile the first ``num`` samples of a SynFER split.

    Each cell: the image upscaled ``scale`` times with the 5 landmarks as dots (cyan/blue eyes, yellow nose, red/pink
    mouth corners), one bar per class for the true distribution (ticks: the vote shares), and the clean label and
    the training label (red when they differ).
    """
    names = dataset.features["label"].names
    rows = dataset.select(range(min(num, len(dataset))))
    size = rows[0]["image"].width * scale
    cell_h = size + BAR_HEIGHT + TEXT_HEIGHT
    sheet = Image.new("RGB", (columns * size, -(-len(rows) // columns) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    bar_w = size / len(names)
    for i, sample in enumerate(rows):
        left, top = (i % columns) * size, (i // columns) * cell_h
        sheet.paste(sample["image"].convert("RGB").resize((size, size), Image.BICUBIC), (left, top))
        for (x, y), colour in zip(sample["landmarks"], LANDMARK_COLOURS):
            cx, cy = left + x * size, top + y * size
            draw.ellipse((cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5), fill=colour, outline=(0, 0, 0))
        base = top + size + BAR_HEIGHT - 10
        total_votes = max(sum(sample["votes"]), 1)
        for k, (p, votes) in enumerate(zip(sample["true_distribution"], sample["votes"])):
            x0 = left + k * bar_w + 2
            draw.rectangle((x0, base - p * (BAR_HEIGHT - 14), x0 + bar_w - 4, base), fill=(70, 110, 200))
            tick = base - votes / total_votes * (BAR_HEIGHT - 14)
            draw.line((x0, tick, x0 + bar_w - 4, tick), fill=(230, 120, 0), width=2)
            draw.text((x0, base + 1), names[k][:3], fill="black", font=font)
        clean, label = names[sample["clean_label"]], names[sample["label"]]
        draw.text((left + 3, base + 12), f"true: {clean}", fill="black", font=font)
        draw.text((left + 3, base + 24), f"label: {label}", fill="black" if clean == label else "red", font=font)
    return sheet
