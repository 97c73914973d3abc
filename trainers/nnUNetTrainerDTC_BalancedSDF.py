"""Issue #14, hypothesis 11 (from the level sets of the Hippocampus-8 models, docs/variants.md): the level sets fit
their SDF target outside the class (far-outside medians +0.32 to +0.41 against targets of +0.35 to +0.41) but not
inside it (-0.08 to -0.18 against -0.45 to -0.60), and in two of three seed-0 models one class's level set stayed
above 0 everywhere, so its view sigmoid(-k * level set) never said "class". The class is a few per cent of a patch,
so plain MSE is almost all outside voxels. These trainers weigh each class's inside and outside equally in the SDF
loss (class_balanced_sdf_loss), the way HED balances its rare edge voxels; everything else is nnUNetTrainerDTC's."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_BalancedSDF(nnUNetTrainerDTC):
    """nnUNetTrainerDTC whose SDF loss weighs the inside and the outside of each class equally."""
    sdf_loss_class_balanced = True


class nnUNetTrainerDTC_BalancedSDF_LabeledOnly(nnUNetTrainerDTC_BalancedSDF):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
