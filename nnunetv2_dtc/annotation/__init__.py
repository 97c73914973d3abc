"""Which unlabelled case to annotate next: the dual-task disagreement of a DTC model (nnUNetv2_dtc_rank_unlabeled)."""
