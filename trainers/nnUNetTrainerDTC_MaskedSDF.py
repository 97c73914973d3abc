"""Issue #14, hypothesis 5: in a multi-class patch, a class that does not occur gets DTC's all-zero SDF target, which
asks the level set to sit on the class boundary everywhere, against the consistency term (and the segmentation) that
want the class absent. These trainers leave such channels out of the SDF loss."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_MaskedSDF(nnUNetTrainerDTC):
    """nnUNetTrainerDTC whose SDF loss skips the classes (regions) absent from each labelled patch."""
    mask_absent_classes_in_sdf_loss = True


class nnUNetTrainerDTC_MaskedSDF_LabeledOnly(nnUNetTrainerDTC_MaskedSDF):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
