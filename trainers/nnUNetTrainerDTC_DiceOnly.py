"""Issue #14, hypothesis 1: DTC's official code supervises with Dice only (its cross-entropy is computed and logged
but never added to the loss, train_la_dtc.py), and beta and lambda_max were tuned against that. nnU-Net adds CE,
whose per-voxel gradient dwarfs the consistency term's. These trainers use nnU-Net's own Dice-only loss
(nnUNetTrainerDiceLoss._build_loss, deep supervision included) as DTC's supervised term."""
from nnunetv2.training.nnUNetTrainer.variants.loss.nnUNetTrainerDiceLoss import nnUNetTrainerDiceLoss

from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_DiceOnly(nnUNetTrainerDTC, nnUNetTrainerDiceLoss):
    """nnUNetTrainerDTC with nnU-Net's Dice-only supervised loss: nnUNetTrainerDTC._build_loss wraps super()'s, which
    in this method order is nnUNetTrainerDiceLoss._build_loss."""


class nnUNetTrainerDTC_DiceOnly_LabeledOnly(nnUNetTrainerDTC_DiceOnly):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
