"""Issue #14, hypothesis 15 (from hypothesis 14's result): input noise of SSL4MIS's size hardly moves the teacher's
level set, so the consistency still asks little of the unlabelled images. A spatial transform moves every voxel:
transformation-consistent self-ensembling (TCSM; Li et al., IEEE TNNLS 2020) asks a network to segment a flipped or
rotated image as the flip or rotation of its segmentation, and draws its semi-supervised gain from that. Here the EMA
teacher of nnUNetTrainerDTC_EMATeacherOnUnlabeled sees the unlabelled patches mirrored along a random non-empty subset
of the configuration's mirror axes (the ones nnU-Net's augmentation and test-time mirroring use), and its level set
is mirrored back before the consistency compares it with the student's segmentation of the unmirrored patches. The
student's input, the labelled patches and the ablation (nnUNetTrainerDTC_LabeledOnly) are
nnUNetTrainerDTC_EMATeacherOnUnlabeled's. Measured (docs/variants.md): nnU-Net's mirroring augmentation does not make
a trained network answer mirror images alike (a mirror moves its level-set view 10 times as far as the noisy
teacher's noise on Hippocampus, 4 times on ACDC), yet this teacher's unlabelled images add no more than plain DTC's
on Hippocampus, and nothing on converged ACDC (two seeds each)."""
import torch

from nnunetv2_dtc.ema_teacher import random_mirror_dims, require_mirror_axes
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_EMATeacherOnUnlabeled import nnUNetTrainerDTC_EMATeacherOnUnlabeled


class nnUNetTrainerDTC_MirroredEMATeacher(nnUNetTrainerDTC_EMATeacherOnUnlabeled):
    """nnUNetTrainerDTC whose consistency on unlabelled patches takes its level-set view from the EMA teacher's
    forward pass of a mirrored copy of them, mirrored back."""

    def on_train_start(self):
        super().on_train_start()
        require_mirror_axes(self.inference_allowed_mirroring_axes)  # set by get_dataloaders: refuse none at once

    def teacher_view(self, teacher_input: torch.Tensor) -> torch.Tensor:
        dims = random_mirror_dims(self.inference_allowed_mirroring_axes)
        return torch.flip(super().teacher_view(torch.flip(teacher_input, dims)), dims)
