"""Issue #14, hypothesis 3: nnU-Net's deep supervision drives every decoder stage with the labelled patches, while
DTC's consistency, the one term the unlabelled patches take part in, reaches the decoder through the full-resolution
output alone. This trainer applies the consistency at every deep-supervision output, with the weights nnU-Net gives
the supervised loss there (multiscale_consistency_loss.py), so the unlabelled patches teach every stage the labelled
ones do."""
from nnunetv2_dtc.multiscale_consistency_loss import MultiScaleConsistencyDTCLoss
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_MultiScaleConsistency(nnUNetTrainerDTC):
    """nnUNetTrainerDTC with the consistency at every deep-supervision scale."""
    dtc_loss_class = MultiScaleConsistencyDTCLoss


class nnUNetTrainerDTC_MultiScaleConsistency_LabeledOnly(nnUNetTrainerDTC_MultiScaleConsistency):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
