"""Issue #14, hypothesis 4: one unlabelled patch per labelled one (DTC's 2 + 2) may be too few for the unlabelled
images to matter. This trainer draws MORE_UNLABELED_PATCHES_PER_LABELED unlabelled patches per labelled one. Its
labelled-only ablation is nnUNetTrainerDTC_LabeledOnly: without unlabelled patches the two are the same trainer."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

# the smallest step up from DTC's 1:1; FixMatch (Sohn et al., NeurIPS 2020) uses 7:1, too costly per step on a CPU
MORE_UNLABELED_PATCHES_PER_LABELED = 2


class nnUNetTrainerDTC_MoreUnlabeled(nnUNetTrainerDTC):
    """nnUNetTrainerDTC with twice as many unlabelled as labelled patches per batch."""
    unlabeled_patches_per_labeled = MORE_UNLABELED_PATCHES_PER_LABELED
