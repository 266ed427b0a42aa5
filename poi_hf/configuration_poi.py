"""Configuration of the joint POI-R model: a PIN config, a TRN config, and the loss settings that tie them."""

from transformers import PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .pin import PINConfig
from .trn import TRNConfig

# Valid values of the loss settings. `poi_hf.losses` imports them from here: the configuration imports no loss code.
TRANSFER_MODES = ("interpolate", "additive")
REGULARIZERS = ("pin_agreement", "log", "rank")
CONFIDENCE_TARGETS = ("label_trust", "prediction_support", "correctness")
MUTUAL_TARGETS = ("ensemble", "reliable_peers")
TRANSFER_SCHEDULES = ("ramp", "pin_lead")
LABEL_TRUSTS = ("relative", "noise_aware")


class POIConfig(PreTrainedConfig):
    r"""
    Joint PIN + TRN configuration (the pattern of transformers' `VisionEncoderDecoderConfig`).

    Each POI component is one switch, so an ablation is one flag (docs/method.md):

    Args:
        pin_config (`PINConfig` or `dict`): the Prior Inference Network.
        trn_config (`TRNConfig` or `dict`): the Target Recognition Network (same classes as the PIN).
        temperature (`float`, defaults to 2.0): ``T`` of the PIN -> TRN transfer.
        transfer_beta (`float`, defaults to 1.0): ``beta_max``, the weight of PIN's soft labels in the TRN loss
            (with ``transfer_mode="interpolate"`` the share of the untrusted weight ``1 - alpha`` that moves to them,
            in [0, 1]).
        transfer_mode (`str`, defaults to `"interpolate"`): `"interpolate"` keeps each sample's total weight at 1,
            moving ``beta(e) * u`` (``u``: PIN's share, see `transfer_floor`) from the hard label to PIN's soft
            label; `"additive"` is the literal ``alpha CE + beta (1 - alpha) T^2 KL`` (the hard label's weight is only
            alpha from the first step).
        transfer_floor (`float`, defaults to 0.0): ``gamma``, the share of PIN's soft label in the target of a fully
            trusted label (PIN's share of sample i is ``gamma + (1 - gamma)(1 - alpha_i)``), in [0, 1].
        transfer_ramp_epochs (`float`, defaults to 3.0): epochs over which ``beta(e)`` ramps from 0 to ``beta_max``.
        transfer_schedule (`str`, defaults to `"ramp"`): what sets ``beta`` after its ramp. `"ramp"`: the clock alone;
            `"pin_lead"`: the ramp times ``min(1, rho)``, with ``rho`` PIN's lead over the TRN on faces neither has
            fitted: the held-out samples of the PIN's ``reliability_holdout`` are kept out of the TRN's loss too, and
            on them ``rho = (a_PIN - 1/C) / (a_TRN - 1/C)`` from the running accuracies of PIN's soft label and of the
            TRN against the (noisy) labels. Symmetric noise scales both excesses over chance by the same factor, so
            ``rho`` needs no noise rate: PIN's soft labels get full weight while PIN is the better classifier and
            less as the TRN overtakes it. Needs ``reliability_holdout >= 2``.
        uncertainty_weight (`float`, defaults to 1.0): ``lambda`` of the uncertainty-head loss.
        uncertainty_regularizer (`str`, defaults to `"pin_agreement"`): how alpha is made. `"pin_agreement"`: the
            sample weight is PIN's relative support of the given label and the head learns to predict it (BCE);
            `"log"` / `"rank"`: the head's output is the weight, kept from collapsing by ``-log alpha`` / SCN's
            rank margin (see `poi_hf.losses`).
        label_trust (`str`, defaults to `"relative"`): the label trust of `"pin_agreement"`. `"relative"`: PIN's
            relative support of the given label, ``s[y] / max s``; `"noise_aware"`: the probability that the given
            label is the clean one under the label noise PIN's soft labels show. A running estimate of the noise's
            transition matrix (`POIModel.noise_transition`, from anchor points: the mean soft label of the faces PIN
            is surest of for each class) undoes the noise in ``s`` and weighs ``y`` against the classes whose labels
            the noise turns into ``y`` (`poi_hf.losses.noise_aware_trust`). It matters where noise is systematic
            (a class flips to its confusable partner); with symmetric noise it ranks labels as ``s[y]`` does.
        transition_momentum (`float`, defaults to 0.98): momentum of that running estimate, per training step.
        trust_sharpness (`float`, defaults to 1.0): exponent ``k`` of the label trust (``(s[y] / max s) ** k`` of
            `"pin_agreement"`; PIN's soft label is tempered and flat, and a larger ``k`` takes more weight off the
            labels PIN disagrees with).
        confidence_target (`str`, defaults to `"prediction_support"`): what the uncertainty head learns to predict
            with `"pin_agreement"`. `"prediction_support"`: PIN's probability ``s[argmax z]`` of the TRN's own
            prediction, so the deployed ``confidence`` falls where the TRN is likely wrong; `"label_trust"`: the
            sample weight alpha itself (PIN's relative support of the given label; it ranks the TRN's test errors
            worse than chance, docs/method.md); `"correctness"`: whether the TRN's prediction is the given label,
            learned only on faces the TRN does not train on (the held-out samples of the PIN's
            ``reliability_holdout``, kept out of the TRN's loss), so that ``confidence`` estimates how often the TRN
            is right on new faces rather than on faces it has fitted. Needs ``reliability_holdout >= 2`` and the TRN's
            ``uncertainty_head_detached`` (the head's loss must not reach the backbone through the held-out faces).
            Alpha, and hence the classifier's training, is the same for every target (apart from the held-out faces).
        au_loss_weight (`float`, defaults to 0.1): weight of the AU-prior BCE in the PIN loss.
        mutual_weight (`float`, defaults to 1.0): weight of mutual learning in the PIN loss.
        mutual_target (`str`, defaults to `"ensemble"`): what mutual learning pulls each PIN member toward.
            `"ensemble"`: the detached soft label (which holds the member itself); `"reliable_peers"`: each peer
            whose running accuracy is higher, weighted by the reliability gap (needs the PIN's
            ``member_weighting="reliability"``, which measures it; `poi_hf.losses.peer_mutual_loss`).
        pin_loss_weight (`float`, defaults to 1.0): weight of the whole PIN loss in the joint loss.
        use_pin_soft_labels (`bool`): transfer PIN's soft labels to the TRN (off: TRN learns from hard labels only).
        use_uncertainty (`bool`): weigh each label by its trust ``alpha`` (made as `uncertainty_regularizer` says)
            and train the TRN's uncertainty head; off: ``alpha`` is fixed at 0.5 (equal CE and transfer weights, i.e.
            plain distillation from PIN), or 1.0 when the transfer is off too, and the head is not trained.
        use_dynamic_transfer (`bool`): ramp ``beta(e)`` up; off: ``beta_max`` from the first step.
        use_mutual_learning (`bool`): pull PIN's branches toward their detached ensemble.
        use_au_loss (`bool`): supervise PIN's AU heads with the AU-prior pseudo-targets.
        use_landmarks (`bool`): feed the batch's landmarks to PIN; off: the canonical template for every face.
    """

    model_type = "poi"
    sub_configs_defaults = {"pin_config": SubConfigSpec(PINConfig), "trn_config": SubConfigSpec(TRNConfig)}
    # Outputs the Trainer leaves out of evaluation predictions (it keeps logits, confidence and pin_logits).
    keys_to_ignore_at_inference = [
        "head_confidence", "pin_member_logits", "pin_au_logits", "pin_soft_labels", "loss_terms"
    ]

    pin_config: dict | PINConfig | None = None
    trn_config: dict | TRNConfig | None = None
    temperature: float = 2.0
    transfer_beta: float = 1.0
    transfer_mode: str = "interpolate"
    transfer_floor: float = 0.0
    transfer_ramp_epochs: float = 3.0
    transfer_schedule: str = "ramp"
    uncertainty_weight: float = 1.0
    uncertainty_regularizer: str = "pin_agreement"
    label_trust: str = "relative"
    transition_momentum: float = 0.98
    trust_sharpness: float = 1.0
    confidence_target: str = "prediction_support"
    au_loss_weight: float = 0.1
    mutual_weight: float = 1.0
    mutual_target: str = "ensemble"
    pin_loss_weight: float = 1.0
    use_pin_soft_labels: bool = True
    use_uncertainty: bool = True
    use_dynamic_transfer: bool = True
    use_mutual_learning: bool = True
    use_au_loss: bool = True
    use_landmarks: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        pin_classes, trn_classes = self.pin_config.id2label, self.trn_config.id2label
        if pin_classes != trn_classes:
            raise ValueError(f"PIN and TRN must share their classes: PIN {pin_classes}, TRN {trn_classes}.")
        self.id2label, self.label2id = dict(pin_classes), dict(self.pin_config.label2id)
        if self.transfer_mode not in TRANSFER_MODES:
            raise ValueError(f"transfer_mode must be one of {TRANSFER_MODES}, got {self.transfer_mode!r}.")
        if self.transfer_mode == "interpolate" and not 0.0 <= self.transfer_beta <= 1.0:
            raise ValueError(
                f"With transfer_mode='interpolate', transfer_beta is a share in [0, 1], got {self.transfer_beta}."
            )
        if not 0.0 <= self.transfer_floor <= 1.0:
            raise ValueError(f"transfer_floor is a share in [0, 1], got {self.transfer_floor}.")
        if self.label_trust not in LABEL_TRUSTS:
            raise ValueError(f"label_trust must be one of {LABEL_TRUSTS}, got {self.label_trust!r}.")
        if not 0.0 <= self.transition_momentum < 1.0:
            raise ValueError(f"transition_momentum must be in [0, 1), got {self.transition_momentum}.")
        if self.trust_sharpness <= 0:
            raise ValueError(f"trust_sharpness must be positive, got {self.trust_sharpness}.")
        if self.confidence_target not in CONFIDENCE_TARGETS:
            raise ValueError(
                f"confidence_target must be one of {CONFIDENCE_TARGETS}, got {self.confidence_target!r}."
            )
        if self.confidence_target == "correctness" and not (
            self.pin_config.reliability_holdout and self.trn_config.uncertainty_head_detached
        ):
            raise ValueError(
                "confidence_target='correctness' fits the uncertainty head on training faces the TRN does not train "
                "on: set the PIN's reliability_holdout >= 2 (it is "
                f"{self.pin_config.reliability_holdout}) and the TRN's uncertainty_head_detached=True (it is "
                f"{self.trn_config.uncertainty_head_detached})."
            )
        if self.mutual_target not in MUTUAL_TARGETS:
            raise ValueError(f"mutual_target must be one of {MUTUAL_TARGETS}, got {self.mutual_target!r}.")
        if self.mutual_target == "reliable_peers" and self.pin_config.member_weighting != "reliability":
            raise ValueError(
                "mutual_target='reliable_peers' needs the members' measured reliabilities: set the PIN's "
                f"member_weighting='reliability' (it is {self.pin_config.member_weighting!r})."
            )
        if self.transfer_schedule not in TRANSFER_SCHEDULES:
            raise ValueError(
                f"transfer_schedule must be one of {TRANSFER_SCHEDULES}, got {self.transfer_schedule!r}."
            )
        if self.transfer_schedule == "pin_lead" and not (
            self.pin_config.reliability_holdout and self.use_pin_soft_labels
        ):
            raise ValueError(
                "transfer_schedule='pin_lead' measures PIN and the TRN on held-out training faces and weighs PIN's "
                "soft labels by the result: set the PIN's reliability_holdout >= 2 (it is "
                f"{self.pin_config.reliability_holdout}) and keep use_pin_soft_labels on (it is "
                f"{self.use_pin_soft_labels})."
            )
        if self.uncertainty_regularizer not in REGULARIZERS:
            raise ValueError(
                f"uncertainty_regularizer must be one of {REGULARIZERS}, got {self.uncertainty_regularizer!r}."
            )

    @property
    def trn_holds_out(self) -> bool:
        """Whether the held-out faces of the PIN's ``reliability_holdout`` are kept out of the TRN's loss too (they
        measure PIN's lead with ``transfer_schedule="pin_lead"``, or fit the head with ``"correctness"``)."""
        return self.transfer_schedule == "pin_lead" or self.confidence_target == "correctness"


__all__ = ["POIConfig"]
