from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_LabeledOnly(nnUNetTrainerDTC):
    """Ablation: DTC's network and losses on the labelled patches only (no unlabelled data), to show what the
    unlabelled cases themselves bring."""
    use_unlabeled_data = False
