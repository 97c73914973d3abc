"""Issue #14, hypothesis 14 (perturbation, from hypothesis 4's "their augmentation"): in plain DTC both views of an
unlabelled patch come from one forward pass of one input through shared features, so the consistency asks two heads
to agree and never asks the network to answer the same on a slightly different input, which is where consistency
methods draw on unlabelled data (Mean Teacher, UA-MT). nnUNetTrainerDTC_EMATeacherOnUnlabeled already takes the
unlabelled patches' level-set view from an EMA teacher; here the teacher sees a noisy copy of them, with the noise of
the DTC authors' group's mean-teacher code (SSL4MIS, ema_teacher.py). The student's input, the labelled patches and
the ablation (nnUNetTrainerDTC_LabeledOnly) are nnUNetTrainerDTC_EMATeacherOnUnlabeled's."""
import torch

from nnunetv2_dtc.ema_teacher import DEFAULT_TEACHER_INPUT_NOISE_CLIP, DEFAULT_TEACHER_INPUT_NOISE_STD, \
    with_clipped_gaussian_noise
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_EMATeacherOnUnlabeled import nnUNetTrainerDTC_EMATeacherOnUnlabeled


class nnUNetTrainerDTC_NoisyEMATeacher(nnUNetTrainerDTC_EMATeacherOnUnlabeled):
    """nnUNetTrainerDTC whose consistency on unlabelled patches takes its level-set view from the EMA teacher's
    forward pass of a noisy copy of them."""
    teacher_input_noise_std: float = DEFAULT_TEACHER_INPUT_NOISE_STD
    teacher_input_noise_clip: float = DEFAULT_TEACHER_INPUT_NOISE_CLIP

    def teacher_input(self, data: torch.Tensor, is_labeled: torch.Tensor) -> torch.Tensor:
        """The unlabelled samples plus clipped Gaussian noise."""
        return with_clipped_gaussian_noise(super().teacher_input(data, is_labeled), self.teacher_input_noise_std,
                                           self.teacher_input_noise_clip)
