"""Issue #14, hypothesis 9 (from benchmarks/task_view_quality.py on the Hippocampus-8 models): DTC's SDF target is 0
on the inner boundary, so even a perfect level set's view sigmoid(-k * level set) is 0.5 there, and 36-55 % of each
hippocampus class is inner boundary. On every patch the consistency then pulls the segmentation's boundary layer
towards 0.5 (lambda_max 30 removed it: 24 % of the reference boundary voxels labelled against 74 % for nnU-Net), and
plain DTC's posterior level set never crossed zero at all. These trainers keep the inner boundary's signed distance
(-1 / max inside distance) in the SDF target, so the zero level lies half a voxel outside the label and the level-set
view of the target is the label itself; everything else is nnUNetTrainerDTC's."""
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_NegativeBoundarySDF(nnUNetTrainerDTC):
    """nnUNetTrainerDTC whose SDF target is negative on the inner boundary instead of DTC's 0."""
    sdf_zero_inner_boundary = False


class nnUNetTrainerDTC_NegativeBoundarySDF_LabeledOnly(nnUNetTrainerDTC_NegativeBoundarySDF):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
