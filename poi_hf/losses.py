"""POI-R losses, pure torch. Every term is returned on its own (for logging and ablations) next to the total.

Notation: B batch, C classes, K regions (+1 global branch = M members), A AUs, T temperature.

PIN (`pin_losses`):
    ce      mean over the M members of CE(z_k, y) (or of the soft-target CE when ``soft_labels`` are given)
    au      BCE of each region's AU logits against the AU pseudo-target ``P[y]`` (soft: ``d^T P``), only on the AUs
            the region can show (``G``); small weight, so priors guide and do not dominate
    mutual  ``mutual_target="ensemble"``: T^2 * KL(s || softmax(z_k / T)) of every member toward the detached
            aggregated soft label ``s``. ``"reliable_peers"``: every member k toward each more reliable peer j,
            ``sum_{k, j} relu(r_j - r_k) T^2 KL(p_j || p_k) / M`` with ``p`` the tempered member distributions
            (detached as targets) and ``r`` PIN's member reliabilities: the most reliable member is pulled by
            nobody, and the pull grows from zero as the members' measured accuracies part (a ramp that follows
            training, not the clock)

TRN (`trn_losses`), with ``s`` = PIN's detached soft label and ``alpha`` = the per-sample label trust: by default
PIN's support of the label, which the TRN's uncertainty head learns to predict (see ``alpha_reg``); a constant with
``use_uncertainty=False`` (`joint_losses`):
    PIN's share of sample i is ``u_i = gamma + (1 - gamma)(1 - alpha_i)``: the untrusted part 1 - alpha of the label
    plus a floor ``gamma`` (``transfer_floor``) that PIN's soft label gets even for a trusted label (its "dark
    knowledge" about similar classes, as in distillation); gamma = 0 gives the plain ``1 - alpha``.
    ce         mean_i w_i * CE(z_i, y_i), with w_i = alpha_i ("additive") or 1 - beta(e) u_i ("interpolate": the
               share u moves from the hard label to PIN's soft label as beta ramps from 0 to 1, so every sample
               keeps a total weight of 1)
    transfer   mean_i beta(e) * u_i * T^2 * KL(s_i || softmax(z_i / T))
    alpha_reg  trains the uncertainty head. Default "pin_agreement": the sample weights are PIN's relative support of
               the given label, ``alpha_i = (s_i[y_i] / max_c s_i[c]) ** k`` (detached; k = ``trust_sharpness``),
               or with ``label_trust="noise_aware"`` the probability that the label is clean under the noise PIN's
               anchors show (`noise_aware_trust`);
               the head learns (BCE) PIN's support of the TRN's own prediction, ``s_i[argmax z_i]``
               (``confidence_target="prediction_support"``), so the deployed ``confidence`` falls where the TRN is
               likely wrong, or alpha itself (``"label_trust"``), or whether the TRN's prediction is the given label,
               on held-out faces the TRN does not train on (``"correctness"``). Ablations: the head's own output as alpha, kept from
               collapsing by ``-lambda * mean log alpha`` ("log") or SCN's rank margin ("rank").
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F
from transformers.utils import ModelOutput

from .configuration_poi import TRANSFER_MODES, POIConfig


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample CE against a distribution. logits (..., C), targets (..., C) -> (...)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1)


def kl_to_target(target: torch.Tensor, logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample ``T^2 * KL(target || softmax(logits / T))``. target (..., C), logits (..., C) -> (...)."""
    log_probs = F.log_softmax(logits / temperature, dim=-1)
    return temperature**2 * (target * (target.clamp_min(1e-12).log() - log_probs)).sum(-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (B,) over the samples where ``mask`` (B,) bool is True (all when None); 0 for none."""
    if mask is None:
        return values.mean()
    weight = mask.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def transfer_weight(epoch: float, beta_max: float, ramp_epochs: float, dynamic: bool = True) -> float:
    """``beta(e)`` of dynamic knowledge transfer: ``beta_max * exp(-5 (1 - e / R)^2)`` for e < R, then ``beta_max``.

    PIN is unreliable in the first epochs, so its soft labels fade in (the sigmoid-shaped ramp-up of Laine & Aila,
    ICLR 2017). ``dynamic=False`` uses ``beta_max`` from the first step (ablation).
    """
    if not dynamic or ramp_epochs <= 0 or epoch >= ramp_epochs:
        return beta_max
    return beta_max * math.exp(-5.0 * (1.0 - max(epoch, 0.0) / ramp_epochs) ** 2)


def pin_losses(
    member_logits: torch.Tensor,
    au_logits: torch.Tensor,
    soft_labels: torch.Tensor,
    labels: torch.Tensor,
    au_prior: torch.Tensor,
    region_aus: torch.Tensor,
    temperature: float,
    target_distribution: torch.Tensor | None = None,
    member_reliability: torch.Tensor | None = None,
    supervised: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """PIN's loss terms, each a scalar, unweighted.

    Args:
        member_logits: (B, M, C) region branches then the global branch.
        au_logits: (B, K, A) region AU logits.
        soft_labels: (B, C) aggregated soft label ``s`` (detached here for mutual learning).
        labels: (B,) hard labels.
        au_prior: (C, A) ``P``; region_aus: (K, A) ``G``.
        temperature: ``T`` of the member distributions.
        target_distribution: (B, C) annotation distribution (e.g. FERPlus votes) used instead of ``labels``.
        member_reliability: (M,) the members' reliabilities ``r`` for the "reliable_peers" mutual term (see the
            module docstring); None pulls every member toward ``soft_labels``.
        supervised: (B,) bool, the samples whose labels train PIN (the CE and AU terms); None: all. Samples kept
            out measure PIN's members (`PINConfig.reliability_holdout`); mutual learning uses no label and sees all.
    """
    member_logits, au_logits = member_logits.float(), au_logits.float()
    batch, members = member_logits.shape[:2]
    if target_distribution is None:
        target = F.one_hot(labels, member_logits.shape[-1]).to(member_logits.dtype)
    else:
        target = target_distribution.to(member_logits.dtype)
    sample_weight = member_logits.new_ones(batch) if supervised is None else supervised.to(member_logits.dtype)
    per_sample = soft_cross_entropy(member_logits, target.unsqueeze(1).expand(-1, members, -1)).mean(1)
    ce = masked_mean(per_sample, supervised)

    au_target = (target @ au_prior).unsqueeze(1).expand_as(au_logits)  # (B, K, A)
    mask = region_aus.unsqueeze(0) * sample_weight[:, None, None]  # (B, K, A)
    au_bce = F.binary_cross_entropy_with_logits(au_logits, au_target, weight=mask, reduction="sum")
    au = au_bce / mask.sum().clamp_min(1.0)

    if member_reliability is None:
        ensemble = soft_labels.detach().float().unsqueeze(1).expand_as(member_logits)
        mutual = kl_to_target(ensemble, member_logits, temperature).mean()
    else:
        mutual = peer_mutual_loss(member_logits, member_reliability, temperature)
    return {"ce": ce, "au": au, "mutual": mutual}


def peer_mutual_loss(member_logits: torch.Tensor, reliability: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mutual learning toward more reliable peers: ``sum_{k, j} relu(r_j - r_k) T^2 KL(p_j || p_k) / M``, batch mean.

    member_logits (B, M, C), reliability (M,) -> scalar. ``p_j`` as a target is detached: a member learns from its
    betters and never drags them toward itself.
    """
    members = member_logits.shape[1]
    log_probs = F.log_softmax(member_logits / temperature, dim=-1)  # (B, M, C)
    targets = log_probs.detach()
    # pair[b, k, j] = KL(p_j || p_k): member k (the student, dim 1) against peer j (the target, dim 2)
    pair = (targets.exp().unsqueeze(1) * (targets.unsqueeze(1) - log_probs.unsqueeze(2))).sum(-1)
    gap = (reliability.float()[None, :] - reliability.float()[:, None]).clamp_min(0.0)  # (k, j)
    return temperature**2 * (pair * gap).sum(dim=(1, 2)).mean() / members


def uncertainty_regularizer(
    confidence: torch.Tensor, kind: str, margin: float = 0.15, high_ratio: float = 0.7
) -> torch.Tensor:
    """Keeps the confidence ``alpha`` (B,) from collapsing to 0.

    "log": ``-mean log alpha``. Minimising ``alpha * l_i - log alpha`` gives ``alpha_i = min(1, 1 / l_i)``-like
    trust: samples whose label the model cannot fit (large ``l_i``) get low alpha.
    "rank": SCN's rank regularisation (Wang et al., CVPR 2020): the mean alpha of the top ``high_ratio`` of the
    batch must exceed that of the rest by ``margin``.
    """
    if kind == "log":
        return -confidence.clamp_min(1e-6).log().mean()
    if kind == "rank":
        ordered, _ = confidence.sort(descending=True)
        split = max(1, min(len(ordered) - 1, int(round(high_ratio * len(ordered)))))
        return F.relu(margin - (ordered[:split].mean() - ordered[split:].mean()))
    raise ValueError(f"Unknown uncertainty regularizer {kind!r}; expected 'log' or 'rank'.")


def trn_losses(
    logits: torch.Tensor,
    confidence: torch.Tensor,
    labels: torch.Tensor,
    pin_soft_labels: torch.Tensor | None,
    beta: float,
    temperature: float,
    target_distribution: torch.Tensor | None = None,
    mode: str = "interpolate",
    floor: float = 0.0,
    supervised: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """TRN's classification terms (scalars, each already multiplied by its sample weights).

    Args:
        logits: (B, C) TRN logits ``z``.
        confidence: (B,) the label trust ``alpha`` in (0, 1] (`joint_losses` says where it comes from).
        labels: (B,) hard labels.
        pin_soft_labels: (B, C) PIN's soft label ``s`` (detached here), or None to drop the transfer term.
        beta: the transfer weight ``beta(e)`` for this step.
        temperature: ``T``.
        target_distribution: (B, C) annotation distribution used instead of ``labels`` for the CE term.
        mode: "interpolate" (default) or "additive", see the module docstring.
        floor: ``gamma``, PIN's share of a fully trusted label (module docstring), in [0, 1].
        supervised: (B,) bool, the samples the TRN trains on (means over them); None: all.
    """
    if mode not in TRANSFER_MODES:
        raise ValueError(f"Unknown transfer mode {mode!r}; expected one of {TRANSFER_MODES}.")
    logits, confidence = logits.float(), confidence.float()
    if target_distribution is None:
        ce_per_sample = F.cross_entropy(logits, labels, reduction="none")
    else:
        ce_per_sample = soft_cross_entropy(logits, target_distribution.float())
    pin_share = floor + (1.0 - floor) * (1.0 - confidence)
    hard_weight = confidence
    if pin_soft_labels is not None and mode == "interpolate":
        hard_weight = 1.0 - beta * pin_share
    terms = {"ce": masked_mean(hard_weight * ce_per_sample, supervised)}
    if pin_soft_labels is not None:
        kl = kl_to_target(pin_soft_labels.detach().float(), logits, temperature)
        terms["transfer"] = beta * masked_mean(pin_share * kl, supervised)
    return terms


def label_trust(soft_labels: torch.Tensor, labels: torch.Tensor, sharpness: float = 1.0) -> torch.Tensor:
    """PIN's relative support of each given label, ``(s[y] / max_c s[c]) ** sharpness`` in (0, 1], detached.

    PIN's soft label is tempered and therefore flat, so a label PIN disagrees with still gets about half the trust at
    ``sharpness=1``; a larger exponent takes more weight off such labels. (B, C), (B,) -> (B,).
    """
    support = soft_labels.detach().float()
    return (support.gather(1, labels[:, None]).squeeze(1) / support.max(dim=-1).values) ** sharpness


def anchor_transition(posterior: torch.Tensor, share: float = 0.03) -> torch.Tensor:
    """The label-noise transition matrix ``T[c, c'] = P(given c' | clean c)`` estimated without clean labels, from
    anchor points (Patrini et al., CVPR 2017): row c is the mean posterior of the ``max(1, round(share * N))``
    samples most surely of class c, taken to be clean members of c whose posterior, fitted to the noisy labels, shows
    where c's labels go. (N, C) -> (C, C), rows sum to 1."""
    posterior = posterior.detach().float()
    anchors = posterior.topk(max(1, round(share * len(posterior))), dim=0).indices  # (count, C)
    return posterior[anchors].mean(0)  # (count, C, C): [j, c] = the j-th anchor of class c


def clean_label_probability(
    clean_posterior: torch.Tensor, labels: torch.Tensor, transition: torch.Tensor
) -> torch.Tensor:
    """P(the given label is the clean one), ``p(y) T[y, y] / sum_c p(c) T[c, y]``, from the clean posterior p (B, C),
    the given labels y (B,) and the transition matrix T (C, C) (rows: clean class, columns: given class) -> (B,)."""
    joint = clean_posterior * transition[:, labels].T  # (B, C): p(c) T[c, y]
    return joint.gather(1, labels[:, None]).squeeze(1) / joint.sum(1).clamp_min(1e-12)


def noise_aware_trust(noisy_posterior: torch.Tensor, labels: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """`clean_label_probability` from a posterior fitted to the noisy labels (PIN's soft label), detached: the noise is
    undone first (backward correction, ``p = p_noisy T^+``, clipped at 0 and renormalised; the pseudo-inverse keeps a
    flat early estimate of T finite). Unlike ``s[y] / max s`` it knows which classes the noise sends labels to: a
    label of a class the noise rarely produces keeps its trust when PIN hesitates. (B, C), (B,), (C, C) -> (B,)."""
    transition = transition.detach().double()
    clean = (noisy_posterior.detach().double() @ torch.linalg.pinv(transition)).clamp_min(0.0)
    clean = clean / clean.sum(1, keepdim=True).clamp_min(1e-12)
    return clean_label_probability(clean, labels, transition).float()


def poi_label_trust(
    config: POIConfig, soft_labels: torch.Tensor, labels: torch.Tensor, noise_transition: torch.Tensor | None = None
) -> torch.Tensor:
    """The per-sample label trust alpha of ``uncertainty_regularizer="pin_agreement"`` (B,), as ``config.label_trust``
    says: `label_trust` or `noise_aware_trust` (with ``noise_transition`` (C, C), `POIModel.noise_transition`), to
    the power ``config.trust_sharpness``."""
    if config.label_trust == "relative":
        return label_trust(soft_labels, labels, config.trust_sharpness)
    if noise_transition is None:
        raise ValueError("label_trust='noise_aware' needs the noise transition estimate (POIModel.noise_transition).")
    return noise_aware_trust(soft_labels, labels, noise_transition) ** config.trust_sharpness


def prediction_support(soft_labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """PIN's probability of the TRN's predicted class, ``s[argmax z]``, detached: low where PIN disagrees with the
    TRN (a likely error) or spreads its mass (an ambiguous face). (B, C), (B, C) -> (B,)."""
    predicted = logits.detach().argmax(dim=-1, keepdim=True)
    return soft_labels.detach().float().gather(1, predicted).squeeze(1)


def joint_losses(
    config: POIConfig,
    outputs: ModelOutput,
    labels: torch.Tensor,
    au_prior: torch.Tensor,
    region_aus: torch.Tensor,
    beta: float,
    soft_labels: torch.Tensor | None = None,
    member_reliability: torch.Tensor | None = None,
    pin_supervised: torch.Tensor | None = None,
    trn_supervised: torch.Tensor | None = None,
    noise_transition: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The POI-R training loss with its terms, as `POITrainer` logs them.

    Args:
        config: a `POIConfig` (weights and switches).
        outputs: the `POIOutput` of the batch (TRN ``logits`` and ``confidence``, PIN ``pin_member_logits``,
            ``pin_au_logits`` and ``pin_soft_labels``).
        labels: (B,) hard (possibly noisy) labels.
        au_prior: (C, A); region_aus: (K, A).
        beta: ``beta(e)`` from `transfer_weight`.
        soft_labels: (B, C) annotation distribution (e.g. FERPlus votes) when the dataset has one.
        member_reliability: (M,) PIN's member reliabilities for ``mutual_target="reliable_peers"`` (the caller
            passes them in that mode only); None pulls every member toward PIN's soft label.
        pin_supervised: (B,) bool, the samples whose labels train PIN (see `pin_losses`); None: all.
        trn_supervised: (B,) bool, the samples the TRN's terms train on (``transfer_schedule="pin_lead"`` and
            ``confidence_target="correctness"`` keep the held-out ones out; the latter fits the head on them only);
            None: all.
        noise_transition: (C, C) the running estimate of the label noise for ``label_trust="noise_aware"``.

    Returns:
        ``loss`` (total) plus ``pin_ce``, ``pin_au``, ``pin_mutual``, ``trn_ce``, ``trn_transfer``, ``alpha_reg``
        (each with its weight applied, a switched-off term is absent), and detached statistics ``alpha_mean`` (the
        label trust the TRN loss used), ``confidence_head_mean`` (the TRN uncertainty head's output),
        ``pin_agreement`` (share of samples whose label is PIN's top class) and ``transfer_weight`` (``beta``).
    """
    pin = pin_losses(
        outputs.pin_member_logits,
        outputs.pin_au_logits,
        outputs.pin_soft_labels,
        labels,
        au_prior,
        region_aus,
        config.pin_config.temperature,
        soft_labels,
        member_reliability,
        pin_supervised,
    )
    terms = {"pin_ce": config.pin_loss_weight * pin["ce"]}
    if config.use_au_loss:
        terms["pin_au"] = config.pin_loss_weight * config.au_loss_weight * pin["au"]
    if config.use_mutual_learning:
        terms["pin_mutual"] = config.pin_loss_weight * config.mutual_weight * pin["mutual"]

    transfer_on = config.use_pin_soft_labels
    head = outputs.head_confidence.float()
    if not config.use_uncertainty:
        confidence = torch.full_like(head, 0.5 if transfer_on else 1.0)
    elif config.uncertainty_regularizer == "pin_agreement":
        confidence = poi_label_trust(config, outputs.pin_soft_labels, labels, noise_transition)
    else:
        confidence = head
    trn = trn_losses(
        outputs.logits,
        confidence,
        labels,
        outputs.pin_soft_labels if transfer_on else None,
        beta,
        config.temperature,
        soft_labels,
        config.transfer_mode,
        config.transfer_floor,
        trn_supervised,
    )
    terms["trn_ce"] = trn["ce"]
    if transfer_on:
        terms["trn_transfer"] = trn["transfer"]
    if config.use_uncertainty:
        if config.uncertainty_regularizer == "pin_agreement":
            target, fitted_on = confidence, trn_supervised
            if config.confidence_target == "prediction_support":
                target = prediction_support(outputs.pin_soft_labels, outputs.logits)
            elif config.confidence_target == "correctness":  # on the faces the TRN does not train on
                target = (outputs.logits.detach().argmax(-1) == labels).float()
                fitted_on = None if trn_supervised is None else ~trn_supervised
            bce = F.binary_cross_entropy(head.clamp(1e-6, 1 - 1e-6), target, reduction="none")
            regularizer = masked_mean(bce, fitted_on)
        else:
            regularizer = uncertainty_regularizer(head, config.uncertainty_regularizer)
        terms["alpha_reg"] = config.uncertainty_weight * regularizer

    total = sum(terms.values())
    terms["loss"] = total
    terms["alpha_mean"] = confidence.detach().float().mean()
    terms["confidence_head_mean"] = head.detach().mean()
    terms["pin_agreement"] = (outputs.pin_soft_labels.detach().argmax(-1) == labels).float().mean()
    terms["transfer_weight"] = torch.tensor(float(beta), device=labels.device)
    return terms
