"""The measures benchmark scripts report: the EM noise-rate estimate of benchmarks/noise_rate_estimate.py, the
risk-coverage area of benchmarks/mirror_averaging.py, the prior inversion of benchmarks/ambiguity_ceiling.py and the
transition matrix benchmarks/trust_ceiling.py counts, with the noise-aware trust it scores (poi_hf.losses)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from poi_hf.losses import anchor_transition, clean_label_probability, noise_aware_trust

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
try:
    from ambiguity_ceiling import prior_inversion
    from mirror_averaging import risk_coverage_area
    from noise_rate_estimate import em_noise_rate
    from trust_ceiling import transition_counts
finally:
    sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_em_recovers_the_noise_rate_of_a_calibrated_pin(rate):
    """Faces whose classes are drawn from PIN's belief (a calibrated PIN), labels flipped uniformly at ``rate``; the
    soft labels are the beliefs tempered as PIN outputs them."""
    generator = torch.Generator().manual_seed(0)
    beliefs = (3 * torch.randn(20000, 7, generator=generator)).softmax(-1)
    true = torch.multinomial(beliefs, 1, generator=generator).squeeze(1)
    flip = torch.rand(len(true), generator=generator) < rate
    labels = torch.where(flip, (true + torch.randint(1, 7, true.shape, generator=generator)) % 7, true)
    temperature = 2.0
    soft_labels = (beliefs.log() / temperature).softmax(-1)
    estimate = em_noise_rate(soft_labels, labels, temperature)
    assert estimate == pytest.approx(float((labels != true).float().mean()), abs=0.015)


def test_risk_coverage_area():
    right = np.array([True, True, False, True])
    # the wrong answer least confident: error rates 0, 0, 0, 1/4 at coverages 1/4 .. 1
    assert risk_coverage_area(np.array([0.9, 0.8, 0.1, 0.7]), right) == pytest.approx((1 / 4) / 4)
    # the wrong answer most confident: error rate 1, 1/2, 1/3, 1/4
    assert risk_coverage_area(np.array([0.1, 0.2, 0.9, 0.3]), right) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_prior_inversion_recovers_a_blend_from_its_aus():
    """AUs drawn as SynFER draws them without noise, ``intensity * dist @ P``: the inversion returns the blend; neutral
    shows no AU, so it is what a weak expression leaves of a full one."""
    from poi_hf.priors import BASIC_CLASS_NAMES, au_prior_table

    prior = torch.tensor(au_prior_table(BASIC_CLASS_NAMES), dtype=torch.float32)
    assert BASIC_CLASS_NAMES[0] == "neutral" and prior[0].sum() == 0
    blends = torch.zeros(4, len(prior))
    blends[0, 1] = 1.0
    blends[1, [4, 5]] = torch.tensor([0.7, 0.3])
    blends[2, [2, 6]] = torch.tensor([0.55, 0.45])
    blends[3, [0, 3]] = torch.tensor([0.4, 0.6])
    recovered = prior_inversion(blends @ prior, prior, steps=20000)
    assert torch.allclose(recovered, blends, atol=0.02)
    weak = prior_inversion(0.6 * blends[2:3] @ prior, prior, steps=20000)
    assert torch.allclose(weak, torch.tensor([[0.4, 0, 0.33, 0, 0, 0, 0.27]]), atol=0.02)


def test_noise_aware_trust_undoes_a_known_transition():
    """A posterior fitted to the noisy labels is the clean one pushed through the transition matrix; undoing it gives
    back the clean posterior's probability that each given label is clean, and anchors (faces sure of one class)
    give back the matrix."""
    generator = torch.Generator().manual_seed(0)
    clean_posterior = (4 * torch.randn(5000, 4, generator=generator)).softmax(-1)
    clean = clean_posterior.argmax(1).numpy()
    given = np.where(np.arange(len(clean)) % 3 == 0, (clean + 1) % 4, clean)  # a third flip to the next class
    counted = transition_counts(clean, given, 4)
    assert counted == pytest.approx(np.array([[2, 1, 0, 0], [0, 2, 1, 0], [0, 0, 2, 1], [1, 0, 0, 2]]) / 3, abs=0.02)
    transition, given = torch.from_numpy(counted).float(), torch.from_numpy(given)
    noisy_posterior = clean_posterior @ transition
    expected = clean_label_probability(clean_posterior, given, transition)
    torch.testing.assert_close(noise_aware_trust(noisy_posterior, given, transition), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(anchor_transition(noisy_posterior, share=0.01), transition, atol=0.03, rtol=0)
