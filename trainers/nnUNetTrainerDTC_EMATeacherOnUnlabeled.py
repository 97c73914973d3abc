"""Issue #14, hypothesis 13 (from the first seed of nnUNetTrainerDTC_EMATeacher, docs/variants.md): the EMA teacher's
level-set view made the unlabelled images count more than plain DTC's own view (+0.0046 against +0.0032 Dice on
Hippocampus, seed 0), but on labelled patches it disagreed with the segmentation more than the network's own view
and pulled it away from its labels, so that variant's labelled-only model was the weakest of the run. Here the teacher
gives the view of the unlabelled patches only; labelled patches keep plain DTC's consistency with the network's own
level set. Without unlabelled patches this trainer is nnUNetTrainerDTC_LabeledOnly, its ablation, so the difference
between the two is what the teacher's view of the unlabelled images adds. The teacher runs on the unlabelled half of
each batch only."""
import torch

from nnunetv2_dtc.trainers.nnUNetTrainerDTC_EMATeacher import nnUNetTrainerDTC_EMATeacher


class nnUNetTrainerDTC_EMATeacherOnUnlabeled(nnUNetTrainerDTC_EMATeacher):
    """nnUNetTrainerDTC whose consistency on unlabelled patches takes its level-set view from the EMA teacher."""

    def _build_loss(self):
        loss = super()._build_loss()
        loss.teacher_views_labeled = False
        return loss

    def teacher_input(self, data: torch.Tensor, is_labeled: torch.Tensor) -> torch.Tensor:
        """The unlabelled samples (after the labelled ones in a DTC batch)."""
        return data[int(is_labeled.sum()):]
