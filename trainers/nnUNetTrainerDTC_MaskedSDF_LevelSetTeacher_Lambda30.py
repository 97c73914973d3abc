"""Issue #14, hypothesis 8 (from the gradient norms the trainers log): at DTC's lambda_max = 1 the weighted
consistency gradient is 1/100 to 1/20 of the supervised one even at full weight (ACDC and Hippocampus runs,
docs/variants.md), so the unlabelled images can hardly move the network. These trainers raise lambda_max to
LAMBDA30_MAX_CONSISTENCY_WEIGHT in the masked-SDF level-set teacher (the variant whose unlabelled images counted on
ACDC and added nothing on Hippocampus), keeping DTC's ramp-up, so at full weight the two gradients are of the same
order; the teacher's detached level set keeps the stronger term from pulling the level set towards the
segmentation's errors."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher import \
    nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher

# the measured ratio 1/100 to 1/20 at lambda = 1 becomes 0.3 to 1.5; Laine & Aila (ICLR 2017) used squared-error
# consistency weights of the same order (w_max 30 to 100)
LAMBDA30_MAX_CONSISTENCY_WEIGHT = 30.0


class nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30(nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher):
    """nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher with lambda_max = 30 instead of DTC's 1."""
    max_consistency_weight = LAMBDA30_MAX_CONSISTENCY_WEIGHT


class nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30_LabeledOnly(
        nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30):
    """Its ablation: the same losses and weights on the labelled patches only."""
    use_unlabeled_data = False
