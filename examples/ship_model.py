"""Ship a trained run as the Space's default model: its TRN (and, with ``--with_pin``, its PIN) re-exported with
the image processor of its training data (size, grayscale, crop template) and a model card that states the data,
the test metrics, the preprocessing and the limitations.

    python examples/ship_model.py --run_dir runs/fer2013-ce --output_dir spaces/checkpoint
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from poi_hf import PINForImageClassification, TRNForImageClassification
from poi_hf.baselines import CONFIDENCE_METHODS
from poi_hf.data import CROP_STYLES, GRAYSCALE_DATASETS
from poi_hf.hub import export_submodel, model_card
from poi_hf.presets import image_processor

LIMITATIONS = """\
## Training data and preprocessing

- Data: {dataset}, {noise}; trained on its train split, epochs and settings chosen on its validation split
  (FER2013: PublicTest), metrics above on its test split (FER2013: PrivateTest), scored once.
- Method: `{method}`, preset `{preset}`, {image_size} px, {epochs} epochs, seed {seed}.
- Preprocessing (`preprocessor_config.json`): faces aligned to the `{crop_style}` 5-point template
  {template}, {gray}resized to {image_size} px, ImageNet-standard mean/std. The face pipeline, `examples/predict.py`
  and the Space read all of it from this file.

## Limitations

- Trained on {colour} faces of one dataset at {image_size} px (FER2013's own images are 48 px: larger inputs are
  upscaled copies, so the model has never seen finer detail than that); 7 classes ({classes}); no contempt.
- FER2013 labels are single, noisy annotations; its classes are imbalanced (disgust has 1.5% of the images), so
  disgust and fear are recognised far less often than happiness, surprise and neutral.
- `confidence`: {confidence}
"""


def ship(run_dir: Path, output_dir: Path, with_pin: bool = False) -> list[Path]:
    """Re-export ``run_dir``'s ``trn/`` (and ``pin/``) into ``output_dir`` with the data's image processor."""
    results = json.loads((run_dir / "metrics.json").read_text())
    settings = results["hyperparameters"]
    dataset = settings["dataset"]
    processor = image_processor(settings["image_size"], CROP_STYLES[dataset], dataset in GRAYSCALE_DATASETS)
    noise = f"{settings['noise_rate']:.0%} {settings['noise_type']} label noise" if settings["noise_rate"] else "clean labels"
    head_target = {
        "prediction_support": "PIN's support of the TRN's own prediction",
        "label_trust": "PIN's trust in the training label",
    }[settings.get("confidence_target", "label_trust")]
    confidence = (
        f"POI-R's uncertainty head, trained to predict {head_target} (see docs/method.md)."
        if settings["method"] == "poi"
        else f"this is a `{settings['method']}` baseline: its uncertainty head is not trained, and the pipelines "
        "report no `confidence`."
    )
    written = []
    for name, model_class in (("trn", TRNForImageClassification), ("pin", PINForImageClassification)):
        if name == "pin" and not with_pin:
            continue
        model = model_class.from_pretrained(run_dir / name)
        if name == "trn":  # runs from before TRNConfig.confidence_trained existed lack it
            model.config.confidence_trained = settings["method"] in CONFIDENCE_METHODS
            if model.config.confidence_source == "flip_consistency":
                confidence = (
                    "the predicted class's mean probability on the face and its mirror image, low where the answer "
                    "is likely wrong; it ranks errors a little better than the top probability (docs/method.md)."
                )
                if model.config.mirror_average:
                    confidence += (
                        " The prediction averages the face and its mirror image (their mean probabilities), so this "
                        "is that mean's top probability."
                    )
        classes = ", ".join(model.config.id2label[i] for i in range(model.config.num_labels))
        notes = LIMITATIONS.format(
            dataset=dataset, noise=noise, method=settings["method"], preset=settings["preset"], epochs=settings["epochs"],
            seed=settings["seed"], image_size=settings["image_size"], crop_style=processor.crop_style,
            template=processor.crop_template, gray="turned grayscale, " if processor.do_grayscale else "",
            colour="grayscale" if processor.do_grayscale else "colour", classes=classes, confidence=confidence,
        )
        card = model_card(
            model, repo_id=f"poi-r-{dataset}-{name}", dataset_name=f"{dataset} ({noise})",
            metrics=results["test"], split=results["test_split"], hyperparameters=settings, notes=notes,
        )
        written.append(export_submodel(model, output_dir / name, processor, card))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run_dir", type=Path, required=True, help="A folder examples/train.py wrote.")
    parser.add_argument("--output_dir", type=Path, default=Path("spaces/checkpoint"))
    parser.add_argument("--with_pin", action="store_true", help="Also ship the PIN (POI-R runs), for the Space's regions.")
    args = parser.parse_args()
    for path in ship(args.run_dir, args.output_dir, args.with_pin):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
