"""Issue #14, hypothesis 2: DTC ramps lambda(t) up over the whole run, so under nnU-Net's poly learning rate the
consistency term reaches full weight only when the learning rate is nearly 0 (lambda < 0.3 for the first half).
These trainers reach lambda_max after the first SHORT_RAMPUP_FRACTION of the run."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

# Laine & Aila (ICLR 2017), whose sigmoid ramp-up DTC uses, ramp up over the first 80 of their 300 epochs
SHORT_RAMPUP_FRACTION = 80 / 300


class nnUNetTrainerDTC_ShortRamp(nnUNetTrainerDTC):
    """nnUNetTrainerDTC with lambda(t) at lambda_max from 27 % of the run on."""
    consistency_rampup_fraction = SHORT_RAMPUP_FRACTION


class nnUNetTrainerDTC_ShortRamp_LabeledOnly(nnUNetTrainerDTC_ShortRamp):
    """Its ablation: the same losses and ramp on the labelled patches only."""
    use_unlabeled_data = False
