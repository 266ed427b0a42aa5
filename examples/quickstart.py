"""Build a PIN and a TRN, save them as Hugging Face checkpoints, reload them through the Auto classes and classify a
face crop with `pipeline("image-classification")`. Untrained weights: this shows the plumbing, not accuracy.

    python examples/quickstart.py --output_dir outputs/quickstart --preset cpu
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from transformers import AutoModel, AutoModelForImageClassification, pipeline

from poi_hf import PINForImageClassification, POIImageProcessor, TRNForImageClassification
from poi_hf.presets import PRESETS, pin_config, trn_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/quickstart"))
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    args = parser.parse_args()

    size = PRESETS[args.preset]["image_size"]
    processor = POIImageProcessor(size={"height": size, "width": size})
    for name, model in (
        ("pin", PINForImageClassification(pin_config(args.preset))),
        ("trn", TRNForImageClassification(trn_config(args.preset))),
    ):
        model.save_pretrained(args.output_dir / name)
        processor.save_pretrained(args.output_dir / name)
        reloaded = AutoModel.from_pretrained(args.output_dir / name)
        print(
            f"{name}: saved to {args.output_dir / name}, reloaded as {type(reloaded).__name__}, "
            f"{sum(p.numel() for p in reloaded.parameters()) / 1e6:.2f} M parameters"
        )

    trn = AutoModelForImageClassification.from_pretrained(args.output_dir / "trn")
    face = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8), mode="L")
    classify = pipeline("image-classification", model=str(args.output_dir / "trn"))
    scores = classify(face, top_k=trn.config.num_labels)
    print("pipeline on a 48x48 grayscale crop:", ", ".join(f"{s['label']} {s['score']:.3f}" for s in scores))


if __name__ == "__main__":
    main()
