"""POI-R facial expression recognition demo (Gradio 6).

Upload a photo or take one with the webcam: every face is detected, aligned and classified. The app shows the
annotated photo, a bar chart per face (TRN distribution, PIN's distribution, and which facial regions drove PIN)
and a table. Configuration (environment variables):

- ``POI_HF_MODEL``: TRN checkpoint folder or Hub id (default: ``checkpoint/trn`` next to this file, a TRN trained on
  FER2013 that ships with the repository; its model card says how it was trained and scored);
- ``POI_HF_PIN_MODEL``: PIN checkpoint (default: the ``pin`` folder next to a local TRN checkpoint, if any).

The model is loaded on the first request, so the page comes up at once.
"""

import functools
import os
from pathlib import Path

import gradio as gr
from huggingface_hub import ModelCard, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import pipeline  # noqa: E402

import poi_hf.pipelines  # noqa: E402,F401  (registers "facial-expression-recognition")
from poi_hf.faces import InvalidImageError, annotate, face_color, load_rgb_image  # noqa: E402
from poi_hf.hub import check_model_folder  # noqa: E402

HERE = Path(__file__).resolve().parent
MODEL_ENV, PIN_ENV = "POI_HF_MODEL", "POI_HF_PIN_MODEL"
DEFAULT_MODEL = HERE / "checkpoint" / "trn"
EXAMPLES = sorted(str(path) for path in (HERE / "examples").glob("*.jpg"))
MAX_CHART_FACES = 8
DISPLAY_SIDE = 1600  # the annotated image is sent to the browser at most this large
TABLE_HEADERS = ["face", "emotion", "probability", "confidence", "PIN support", "top regions (PIN)", "box"]
HUB_PROBLEMS = (  # huggingface_hub's errors, in words for the page; subclasses before their base classes
    (GatedRepoError, "a gated Hub repository: accept its terms on the Hub and set HF_TOKEN"),
    (RepositoryNotFoundError, "no such model on the Hub, or a private one (then set HF_TOKEN)"),
    (LocalEntryNotFoundError, "not a local folder, not in the Hub cache, and the Hub could not be reached"),
    (EntryNotFoundError, "a Hub repository without config.json, so not a model saved by save_pretrained"),
    (HFValidationError, "neither a local folder nor a Hub id of the form 'owner/name'"),
    (HfHubHTTPError, "the Hub answered with an error; try again later"),
)


class ModelSettingError(ValueError):
    """A model setting names no model that can be loaded; the message says which setting, and why."""


def check_model_setting(variable: str, model: str) -> None:
    """Raise `ModelSettingError` unless ``model`` (the value of ``variable``) is a model folder that can be loaded
    (`poi_hf.hub.check_model_folder`) or a Hub id with a config.json, so the page never shows a raw Hub error."""
    try:
        check_model_folder(model)
        if not Path(model).is_dir():  # a Hub id: fetch (or find in the cache) its config before loading
            hf_hub_download(model, "config.json")
    except (OSError, ValueError) as error:
        problem = next((text for kind, text in HUB_PROBLEMS if isinstance(error, kind)), str(error).rstrip("."))
        raise ModelSettingError(f"`{variable}` is `{model}`: {problem}. Set `{variable}` to a checkpoint folder or "
                                "a Hub id 'owner/name'.") from error


@functools.lru_cache(maxsize=1)
def get_pipeline():
    """Load the pipeline once, on first use, after checking the model settings."""
    model = os.environ.get(MODEL_ENV, str(DEFAULT_MODEL))
    pin_model = os.environ.get(PIN_ENV)
    check_model_setting(MODEL_ENV, model)
    if pin_model:
        check_model_setting(PIN_ENV, pin_model)
    return pipeline("facial-expression-recognition", model=model, pin_model=pin_model, trust_remote_code=False)


def model_description() -> str:
    """Which model the Space serves and what it was trained on, from the checkpoint's model card."""
    model = os.environ.get(MODEL_ENV, str(DEFAULT_MODEL))
    card = Path(model) / "README.md"
    if not card.is_file():
        return f"Model: `{model}`."
    results = ModelCard.load(card).data.eval_results or []
    accuracy = next((r for r in results if r.metric_type == "accuracy"), None)
    if accuracy is None:
        return f"Model: `{model}`."
    return (f"Model: `{model}`, trained on **{accuracy.dataset_name}**; accuracy on its {accuracy.dataset_split} "
            f"split: {accuracy.metric_value:.1%}. See the model card for its limitations.")


def distribution_figure(faces: list[dict]) -> plt.Figure:
    """One row per face, numbered from 1 as in the annotated image and the table: emotion distribution (bars: TRN,
    dots: PIN) and PIN's region contributions."""
    faces = faces[:MAX_CHART_FACES]
    with_regions = "regions" in faces[0]
    figure, axes = plt.subplots(len(faces), 2 if with_regions else 1, figsize=(9 if with_regions else 5,
                                2.3 * len(faces)), squeeze=False, constrained_layout=True)
    for number, (face, row) in enumerate(zip(faces, axes), start=1):
        labels, probabilities = list(face["distribution"]), list(face["distribution"].values())
        row[0].barh(labels, probabilities, color=[channel / 255 for channel in face_color(number - 1)])
        if "pin_distribution" in face:
            row[0].plot(list(face["pin_distribution"].values()), labels, "k.", label="PIN")
            row[0].legend(loc="lower right", fontsize=7)
        confidence = "" if face["confidence"] is None else f" (confidence {face['confidence']:.2f})"
        row[0].set(xlim=(0, 1), title=f"#{number} {face['label']}{confidence}")
        row[0].invert_yaxis()
        if with_regions:
            # The regions' shares are of PIN's probability of the TRN's label, which PIN may not rank first.
            pin_label = max(face["pin_distribution"], key=face["pin_distribution"].get)
            names = [region["name"] for region in face["regions"]]
            row[1].barh(names, [region["contribution"] for region in face["regions"]], color="0.5")
            row[1].set(xlim=(0, 1), title=f"PIN says '{pin_label}'\nregions behind its p('{face['label']}')")
            row[1].invert_yaxis()
    return figure


def table_rows(faces: list[dict]) -> list[list]:
    """One row per face, numbered from 1 as in the annotated image and the chart."""
    rows = []
    for number, face in enumerate(faces, start=1):
        regions = sorted(face.get("regions", []), key=lambda region: -region["contribution"])[:2]
        top_regions = ", ".join(f"{region['name']} {region['contribution']:.0%}" for region in regions)
        confidence = None if face["confidence"] is None else round(face["confidence"], 3)
        pin_support = round(face["pin_support"], 3) if "pin_support" in face else None
        box = face["box"]
        rows.append([number, face["label"], round(face["score"], 3), confidence, pin_support, top_regions,
                     f"{box['xmin']},{box['ymin']},{box['xmax']},{box['ymax']}"])
    return rows


def message_only(text: str) -> tuple[None, None, list, str]:
    """Outputs that show a status message and nothing else."""
    return None, None, [], text


def predict(path: str | None) -> tuple[Image.Image | None, plt.Figure | None, list[list], str]:
    """The app's one event: image file -> (annotated image, chart, table rows, status message)."""
    if not path:
        return message_only("Upload a photo or take one with the webcam.")
    try:
        image = load_rgb_image(path)
    except (InvalidImageError, FileNotFoundError) as error:
        return message_only(f"**Cannot read this file as an image.** {error}")
    try:
        fer = get_pipeline()
    except ModelSettingError as error:
        return message_only(f"**The model could not be loaded.** {error}")
    except (OSError, ValueError) as error:  # a model is there, but not one this pipeline can serve
        return message_only(f"**The model could not be loaded** ({error}). Set `{MODEL_ENV}` to a TRN "
                            "checkpoint folder or Hub id.")
    faces = fer(image, allow_no_face=True)
    if not faces:
        return message_only("**No face found.** Try a photo with a visible, roughly frontal face.")
    with Image.open(path) as original:
        width, height = original.size
    annotated = annotate(image, faces)
    annotated.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    status = f"Found {len(faces)} face{'s' * (len(faces) > 1)}."
    if max(width, height) > max(image.size):
        status += f" The image was large ({width}×{height}); it was analysed at {image.width}×{image.height}."
    if len(faces) > MAX_CHART_FACES:
        status += f" The chart shows the first {MAX_CHART_FACES} faces; the table has all."
    figure = distribution_figure(faces)
    plt.close(figure)
    return annotated, figure, table_rows(faces), status


def predict_upload(payload: dict | None) -> tuple[Image.Image | None, plt.Figure | None, list[list], str]:
    """`predict` on the uploaded file, undecoded (the events run with ``preprocess=False``), so that a file which
    is not an image reaches the app and gets a clear message instead of failing in Gradio's own decoding."""
    return predict(payload["path"] if payload else None)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="POI-R facial expression recognition") as demo:
        gr.Markdown("# POI-R facial expression recognition\nEach face: emotion distribution, the model's confidence "
                    "(for models trained since December 2026, the shipped one included: the label's mean "
                    "probability on the face and its mirror image, which these models also average into their "
                    "prediction; for older POI-R models the uncertainty head's α), PIN's support (PIN's "
                    "probability of the label, when a PIN is loaded), and the facial regions that drove PIN's view. "
                    "Low values flag likely errors (error AUROC about 0.82 on synthetic faces, 0.77-0.78 on FER2013 "
                    "for the averaged prediction), PIN's support better on synthetic faces (0.86) but not on "
                    "FER2013 (see docs/method.md).")
        gr.Markdown(model_description(), elem_id="model-info")
        with gr.Row():
            with gr.Column():
                image = gr.Image(sources=["upload", "webcam"], type="filepath", label="Photo", elem_id="photo")
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
                gr.Examples(EXAMPLES, inputs=image)
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                annotated = gr.Image(label="Faces", type="pil", format="png", elem_id="annotated")
        chart = gr.Plot(label="Per-face distributions", elem_id="chart")
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Faces", elem_id="faces-table")
        outputs = [annotated, chart, table, status]
        button.click(predict_upload, inputs=image, outputs=outputs, api_name="predict", preprocess=False)
        image.upload(predict_upload, inputs=image, outputs=outputs, api_name=False, preprocess=False)
    return demo.queue(default_concurrency_limit=1, max_size=32)


demo = build_demo()

if __name__ == "__main__":
    demo.launch()
