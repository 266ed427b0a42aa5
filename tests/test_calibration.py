"""Temperature scaling (`poi_hf.calibration`, `TRNConfig.calibration_temperature`): the fit recovers a known
temperature, the TRN applies it in eval mode only (to each view before the mirror average), and it reaches the
pipelines' scores."""

import math

import numpy as np
import pytest
import torch
from tiny_run import tiny_synfer, tiny_trainer
from transformers import pipeline

from poi_hf import TRNConfig, TRNForImageClassification
from poi_hf.calibration import (
    TEMPERATURE_RANGE,
    calibrate_temperature,
    fit_temperature,
    plain_predictions,
    predict_views,
    tempered_log_probs,
)
from poi_hf.presets import tiny_trn_config


def sampled_labels(logits: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return torch.multinomial(logits.softmax(-1), 1, generator=torch.Generator().manual_seed(seed)).squeeze(1)


@pytest.mark.parametrize("true_temperature", [0.5, 3.0])
def test_the_fit_recovers_the_temperature_that_generated_the_labels(true_temperature):
    torch.manual_seed(0)
    calibrated = 2.0 * torch.randn(20_000, 7)
    labels = sampled_labels(calibrated)
    fitted = fit_temperature((calibrated * true_temperature)[None], labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    assert fit_temperature(calibrated[None], labels) == pytest.approx(1.0, rel=0.05)


def test_two_identical_views_fit_as_one_and_the_fit_minimises_the_nll():
    torch.manual_seed(1)
    logits = 4.0 * torch.randn(5_000, 7)
    labels = sampled_labels(logits / 2.5)
    one, two = fit_temperature(logits[None], labels), fit_temperature(torch.stack([logits, logits]), labels)
    assert one == pytest.approx(two, rel=1e-3)
    views = torch.stack([logits, logits + torch.randn_like(logits)])
    fitted = fit_temperature(views, labels)

    def nll(t: float) -> float:
        return float(-tempered_log_probs(views, t).gather(1, labels[:, None]).mean())

    assert nll(fitted) <= min(nll(fitted * 0.9), nll(fitted * 1.1), nll(1.0))
    assert TEMPERATURE_RANGE[0] <= fitted <= TEMPERATURE_RANGE[1]
    with pytest.raises(ValueError, match="at least one"):
        fit_temperature(views[:, :0], labels[:0])


def test_tempered_log_probs_are_the_log_of_the_views_mean_probabilities():
    views = torch.randn(2, 5, 7)
    expected = ((views[0] / 1.7).softmax(-1) + (views[1] / 1.7).softmax(-1)) / 2
    assert torch.allclose(tempered_log_probs(views, 1.7).exp(), expected, atol=1e-6)
    assert torch.allclose(tempered_log_probs(views[:1], 2.0), (views[0] / 2).log_softmax(-1), atol=1e-6)


def tiny_trn(**settings) -> TRNForImageClassification:
    torch.manual_seed(0)
    return TRNForImageClassification(tiny_trn_config(**settings)).eval()


@torch.no_grad()
@pytest.mark.parametrize("mirror_average", [False, True])
def test_the_trn_tempers_each_view_in_eval_mode_only(mirror_average):
    torch.manual_seed(2)
    images = torch.randn(4, 3, 48, 48)
    trn = tiny_trn(confidence_source="flip_consistency", mirror_average=mirror_average, calibration_temperature=2.5)
    with plain_predictions(trn):
        plain = torch.stack([trn(images).logits, trn(images.flip(-1)).logits])
    assert trn.config.calibration_temperature == 2.5 and trn.config.mirror_average == mirror_average
    output = trn(images)
    expected = tempered_log_probs(plain if mirror_average else plain[:1], 2.5)
    assert torch.allclose(output.logits.log_softmax(-1), expected, atol=1e-5)
    predicted = output.logits.argmax(-1, keepdim=True)
    view_probs = (plain / 2.5).softmax(-1).gather(2, predicted.expand(2, -1, -1)).mean(0).squeeze(1)
    assert torch.allclose(output.confidence, view_probs, atol=1e-5)  # the flip confidence is tempered too
    trn.train()  # training never tempers (batch statistics, so compared with the same model at T = 1)
    untempered = trn(images).logits
    trn.config.calibration_temperature = 1.0
    assert torch.allclose(untempered, trn(images).logits, atol=1e-6)


def test_plain_predictions_restore_the_deployed_settings_after_an_error():
    trn = tiny_trn(confidence_source="flip_consistency", mirror_average=True, calibration_temperature=1.3)
    with pytest.raises(RuntimeError), plain_predictions(trn):
        assert (trn.config.confidence_source, trn.config.mirror_average) == ("head", False)
        assert trn.config.calibration_temperature == 1.0
        raise RuntimeError("interrupted")
    assert (trn.config.confidence_source, trn.config.mirror_average, trn.config.calibration_temperature) == (
        "flip_consistency",
        True,
        1.3,
    )


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_a_non_positive_temperature_is_refused(bad):
    with pytest.raises(ValueError, match="calibration_temperature"):
        TRNConfig(calibration_temperature=bad)


def test_the_saved_temperature_reaches_the_pipeline_scores(tmp_path):
    from PIL import Image

    from poi_hf import POIImageProcessor

    trn = tiny_trn()
    processor = POIImageProcessor(size={"height": 48, "width": 48})
    image = Image.new("RGB", (64, 64), "gray")
    scores = {}
    for temperature in (1.0, 4.0):
        trn.config.calibration_temperature = temperature
        trn.save_pretrained(tmp_path / str(temperature))
        processor.save_pretrained(tmp_path / str(temperature))
        classify = pipeline("image-classification", model=str(tmp_path / str(temperature)))
        scores[temperature] = classify(image, top_k=7)
    top = {t: s[0]["score"] for t, s in scores.items()}
    assert top[4.0] < top[1.0]  # a higher temperature flattens the distribution
    assert [s["label"] for s in scores[4.0]] == [s["label"] for s in scores[1.0]]  # and keeps the ranking


@pytest.mark.parametrize("mirror_average", [False, True])
def test_calibration_fits_the_labels_evaluation_scores_against(tmp_path, synfer_cache, mirror_average):
    """Through the trainer (as examples/train.py calls it): the clean labels where the split has them, the faces and
    their mirror images in the split's order, and the model keeps the fitted temperature."""
    dataset = tiny_synfer(synfer_cache)
    validation = dataset["validation"]
    subjective = np.asarray(validation.with_format(None)["label"][:])
    clean = np.asarray(validation.with_format(None)["clean_label"][:])
    assert (subjective != clean).any()  # SynFER's default labels are one annotator's votes
    trainer = tiny_trainer(tmp_path, dataset)
    trn = trainer.model.trn
    trn.config.mirror_average = mirror_average
    views = predict_views(trainer, validation, mirror=mirror_average)
    assert views.shape == (2 if mirror_average else 1, len(validation), trn.config.num_labels)
    pixels = torch.stack(validation[:]["pixel_values"])
    with torch.no_grad(), plain_predictions(trn.eval()):  # the trainer predicts in bf16 where the CPU has AMX
        assert torch.allclose(views[0], trn(pixels).logits, atol=1e-2)
        if mirror_average:
            assert torch.allclose(views[1], trn(pixels.flip(-1)).logits, atol=1e-2)
            assert not torch.allclose(views[0], views[1], atol=1e-2)
    report = calibrate_temperature(trainer, validation)
    assert report["temperature"] == pytest.approx(fit_temperature(views, torch.as_tensor(clean)))
    assert trn.config.calibration_temperature == report["temperature"]
    assert report["nll_after"] <= report["nll_before"]
