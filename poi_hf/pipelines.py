"""``pipeline("facial-expression-recognition")``: photos in the wild -> per-face emotion distributions.

Each face is detected (YuNet, 5 landmarks), aligned to the training template and classified by the TRN; when a PIN
checkpoint is available it also reports PIN's distribution and which facial regions drove it::

    import poi_hf  # registers the task
    from transformers import pipeline

    fer = pipeline("facial-expression-recognition", model="outputs/run/trn")  # finds outputs/run/pin itself
    faces = fer("group_photo.jpg")
    faces[0]["label"], faces[0]["confidence"], faces[0]["regions"]
"""

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, Pipeline, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY

from .faces import DEFAULT_CROP_SIZE, FaceDetector, NoFaceError, crop_faces, load_face_detector, transform_points
from .faces.images import ImageInput, describe_image
from .hub import PIN_MODEL_KEY, check_model_folder
from .pin import PINForImageClassification

TASK = "facial-expression-recognition"


def find_pin(model: PreTrainedModel) -> Path | str | None:
    """The PIN of a TRN's run, if any: the ``pin/`` checkpoint next to a local ``trn/`` one (the layout
    `examples/train.py` writes), else the PIN repo the TRN's config names (``pin_model``, written by
    `examples/push_to_hub.py`: a Hub TRN and its PIN are two repos)."""
    if model.name_or_path and Path(model.name_or_path).is_dir():
        sibling = Path(model.name_or_path).parent / "pin"
        if (sibling / "config.json").is_file():
            return sibling
    return getattr(model.config, PIN_MODEL_KEY, None)


def load_pin(name_or_path: str | os.PathLike) -> PINForImageClassification:
    """`PINForImageClassification.from_pretrained`, with an error that names the PIN (a TRN may name it, and
    transformers' offline error names no repo)."""
    check_model_folder(name_or_path)
    try:
        return PINForImageClassification.from_pretrained(name_or_path)
    except OSError as error:
        raise OSError(
            f"Could not load the PIN checkpoint {str(name_or_path)!r} (the pipeline's pin_model, else a pin/ folder "
            f"next to the TRN or the PIN repo named by the TRN's config, {PIN_MODEL_KEY!r}): {error}\nPass "
            "pin_model=False to run the TRN alone."
        ) from error


class FacialExpressionRecognitionPipeline(Pipeline):
    """Detect, align and classify every face of an image.

    Args:
        model: a TRN checkpoint (`TRNForImageClassification` or any image classifier trained on aligned crops, e.g. a
            transformers `ResNetForImageClassification`; a model without a ``confidence`` output gets ``None`` there).
        pin_model: a PIN checkpoint for per-region explanations: a path or Hub id, or a `PINForImageClassification`
            loaded with ``from_pretrained`` (its image processor is read from the same place); ``None`` looks for
            a sibling ``pin/`` folder of a local TRN checkpoint, else the PIN repo named by the TRN's config
            (``pin_model``, as `examples/push_to_hub.py` publishes them); ``False`` turns PIN off.
        face_detector: a `FaceDetector`, or a backend name for `load_face_detector` (default ``"auto"``).
        crop_size: side of the aligned crops before the image processor resizes them for the model.
        crop_style: landmark template faces are aligned to: a name (see `poi_hf.priors.landmark_template`) or
            (5, 2) coordinates in [0, 1]; default: the model's image processor's ``crop_template`` (the template the
            model was trained with), else its ``crop_style``, else ``"arcface"``.

    Call arguments:
        inputs: an image (a path, an ``http(s)://`` URL, a `PIL.Image`, or a uint8 (0..255) or float (0..1) array;
            see `poi_hf.faces.load_rgb_image`) or a non-empty list of them. An error about one image of a list
            names it by index and path.
        allow_no_face (`bool`, defaults to `False`): return ``[]`` for an image without faces instead of raising
            `NoFaceError`.

    Returns, for each image, a list with one dict per face (left to right):
        - ``box``: ``{"xmin", "ymin", "xmax", "ymax"}`` in pixels of the loaded image (images with a side over
          `poi_hf.faces.MAX_IMAGE_SIDE` are downscaled first);
        - ``detection_score``, ``landmarks`` (5 ``[x, y]``, image pixels);
        - ``label``, ``score``: the TRN's top class and its probability; ``distribution``: ``{label: probability}``;
        - ``confidence``: the TRN's estimate in (0, 1) that ``label`` is right (``config.confidence_source``: by
          default for models trained since December 2026 the predicted class's mean probability on the face and its
          mirror image; else the uncertainty head's α); ``None`` for a classifier without one or whose uncertainty
          head training left untrained (``config.confidence_trained``);
        - with a PIN: ``pin_distribution``; ``pin_support``, PIN's probability of ``label`` (where PIN disagrees with
          the TRN or spreads its mass, the label is more often wrong: docs/method.md has its error AUROC); and
          ``regions``: per PIN member (the regions, ``"global"`` and, with ``use_au_evidence``, ``"au_evidence"``) its
          ``contribution`` to PIN's probability of ``label`` (summing to 1) and, for facial regions, its ``polygon``
          (4 image-pixel corners).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(
        self,
        *args,
        pin_model: str | os.PathLike | PINForImageClassification | bool | None = None,
        face_detector: FaceDetector | str = "auto",
        crop_size: int = DEFAULT_CROP_SIZE,
        crop_style: str | Sequence[Sequence[float]] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.face_detector = load_face_detector(face_detector) if isinstance(face_detector, str) else face_detector
        self.crop_size = crop_size
        if crop_style is None:
            processor = self.image_processor
            crop_style = getattr(processor, "crop_template", None) or getattr(processor, "crop_style", "arcface")
        self.crop_style = crop_style
        if pin_model is None:
            pin_model = find_pin(self.model)
        self.pin_model, self.pin_image_processor = None, None
        if pin_model:
            if not isinstance(pin_model, PINForImageClassification):
                pin_model = load_pin(pin_model)
            if pin_model.config.id2label != self.model.config.id2label:
                raise ValueError(
                    f"The PIN's classes {pin_model.config.id2label} differ from the TRN's {self.model.config.id2label}."
                )
            self.pin_model = pin_model.to(self.device).eval()
            self.pin_image_processor = AutoImageProcessor.from_pretrained(pin_model.name_or_path)

    def __call__(self, inputs: ImageInput | list[ImageInput], **kwargs) -> list[dict] | list[list[dict]]:
        if not isinstance(inputs, list):
            return super().__call__(inputs, **kwargs)
        if not inputs:
            raise ValueError("The list of images is empty; pass at least one image (a path, URL, PIL image or array).")
        results = []
        for index, image in enumerate(inputs):  # one at a time: each image's faces already form a batch
            try:
                results.append(super().__call__(image, **kwargs))
            except (OSError, ValueError) as error:
                raise type(error)(f"Image {index} of {len(inputs)} ({describe_image(image)}): {error}") from error
        return results

    def _sanitize_parameters(self, allow_no_face: bool | None = None):
        return ({} if allow_no_face is None else {"allow_no_face": allow_no_face}), {}, {}

    def preprocess(self, image, allow_no_face: bool = False) -> dict[str, Any]:
        crops = crop_faces(image, self.face_detector, self.crop_size, self.crop_style)
        if not crops and not allow_no_face:
            raise NoFaceError(
                "No face found in the image. Use a photo with a visible, roughly frontal face of at "
                "least 20 pixels, or pass allow_no_face=True to get an empty result."
            )
        inputs: dict[str, Any] = {"crops": crops}
        if crops:
            images = [crop.image for crop in crops]
            inputs["pixel_values"] = self.image_processor(images, return_tensors="pt")["pixel_values"]
            if self.pin_model is not None:
                inputs["pin_pixel_values"] = self.pin_image_processor(images, return_tensors="pt")["pixel_values"]
                inputs["landmarks"] = torch.from_numpy(np.stack([crop.normalized_landmarks for crop in crops]))
        return inputs

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = {"crops": model_inputs["crops"]}
        if not outputs["crops"]:
            return outputs
        trn = self.model(pixel_values=model_inputs["pixel_values"].to(self.dtype))
        outputs["probabilities"] = trn.logits.float().softmax(-1)
        confidence = getattr(trn, "confidence", None)  # a plain image classifier has none
        config = self.model.config
        if not getattr(config, "confidence_trained", True) and getattr(config, "confidence_source", "head") == "head":
            confidence = None  # e.g. a CE or KD baseline's TRN, whose head training left untrained
        outputs["confidence"] = None if confidence is None else confidence.float()
        if self.pin_model is not None:
            pin = self.pin_model(
                pixel_values=model_inputs["pin_pixel_values"].to(self.pin_model.dtype),
                landmarks=model_inputs["landmarks"],
            )
            outputs.update(
                pin_probabilities=pin.soft_labels.float(),
                region_contributions=pin.region_contributions,
                region_boxes=pin.region_boxes,
            )
        return outputs

    def postprocess(self, model_outputs: dict[str, Any]) -> list[dict[str, Any]]:
        id2label = self.model.config.id2label
        confidence = model_outputs.get("confidence")  # absent when the image has no face
        results = []
        for index, crop in enumerate(model_outputs["crops"]):
            probabilities = model_outputs["probabilities"][index].tolist()
            top = int(np.argmax(probabilities))
            x_min, y_min, x_max, y_max = (round(float(value)) for value in crop.face.box)
            result = {
                "box": {"xmin": x_min, "ymin": y_min, "xmax": x_max, "ymax": y_max},
                "detection_score": crop.face.score,
                "landmarks": crop.face.landmarks.tolist(),
                "label": id2label[top],
                "score": probabilities[top],
                "confidence": None if confidence is None else float(confidence[index]),
                "distribution": {id2label[i]: p for i, p in enumerate(probabilities)},
            }
            if self.pin_model is not None:
                result.update(self._explain(model_outputs, index, top, crop.matrix))
            results.append(result)
        return results

    def _explain(self, model_outputs: dict[str, Any], index: int, label: int, matrix: np.ndarray) -> dict[str, Any]:
        """PIN's distribution and each member's share of PIN's probability for ``label`` (`PINConfig.member_names`:
        regions, global branch, AU evidence)."""
        config = self.pin_model.config
        contributions = model_outputs["region_contributions"][index, :, label].float()
        contributions = (contributions / contributions.sum().clamp_min(1e-12)).tolist()
        inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
        boxes = model_outputs["region_boxes"][index].float().numpy() * self.crop_size  # (K, 4, 2) crop pixels
        regions = [{"name": name, "contribution": share} for name, share in zip(config.member_names, contributions)]
        for region, box in zip(regions, boxes):  # the K regions come first; global and AU evidence have no box
            region["polygon"] = transform_points(box, inverse).tolist()
        pin = model_outputs["pin_probabilities"][index].tolist()
        return {
            "pin_distribution": {config.id2label[i]: p for i, p in enumerate(pin)},
            "pin_support": pin[label],
            "regions": regions,
        }


PIPELINE_REGISTRY.register_pipeline(
    TASK,
    pipeline_class=FacialExpressionRecognitionPipeline,
    pt_model=AutoModelForImageClassification,
    type="image",
)
