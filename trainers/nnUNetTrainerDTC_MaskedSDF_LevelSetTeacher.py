"""Issue #14, hypotheses 5 and 7 together, for multi-class data: the level-set teacher (the consistency trains the
segmentation only) learns its level set from the SDF loss alone, so on ACDC's 2D slices the all-zero SDF target of an
absent class ("on the boundary everywhere") would be the one thing it teaches the segmentation. These trainers leave
such channels out of the SDF loss (nnUNetTrainerDTC_MaskedSDF) in the level-set teacher."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_LevelSetTeacher import nnUNetTrainerDTC_LevelSetTeacher


class nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher(nnUNetTrainerDTC_LevelSetTeacher):
    """nnUNetTrainerDTC_LevelSetTeacher whose SDF loss skips the classes (regions) absent from each labelled patch."""
    mask_absent_classes_in_sdf_loss = True


class nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_LabeledOnly(nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
