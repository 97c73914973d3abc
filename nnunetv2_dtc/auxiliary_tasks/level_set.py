"""DTC's own auxiliary task: a level set per foreground class, regressed onto the normalised SDF of the label map and
turned into a foreground probability by a steep sigmoid for the consistency term (Luo et al., AAAI 2021;
train_la_dtc.py)."""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask, LabelOrRegion
from nnunetv2_dtc.sdf import compute_sdf

DEFAULT_LEVEL_SET_SHARPNESS = 1500.0  # k in sigmoid(-k * level_set), DTC's train_la_dtc.py


def level_set_to_probability(level_set: torch.Tensor, sharpness: float) -> torch.Tensor:
    """DTC's smooth approximation of the Heaviside function that maps a level set to a foreground probability."""
    return torch.sigmoid(-sharpness * level_set)


def sdf_loss(level_set: torch.Tensor, sdf_target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MSE between predicted level set and SDF target; `valid` (broadcastable bool) excludes voxels such as the
    ignore label."""
    squared_error = (level_set - sdf_target) ** 2
    if valid is None:
        return squared_error.mean()
    valid = valid.expand_as(squared_error)
    return squared_error[valid].sum() / valid.sum().clamp_min(1)


def class_balanced_sdf_loss(level_set: torch.Tensor, sdf_target: torch.Tensor,
                            valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MSE with the class's inside (target <= 0: the interior and DTC's zero inner boundary) and its outside
    (target > 0) weighted equally per sample and channel: the mean of the two groups' mean squared errors, or the one
    group's where the other is empty (an absent class: all voxels; a class filling the patch: all voxels), averaged
    over the (sample, channel) pairs that have a valid voxel. A class covering a few per cent of the patch then
    weighs as much as the background around it (plain MSE: a few per cent of the loss)."""
    squared_error = (level_set - sdf_target) ** 2
    valid = torch.ones_like(squared_error, dtype=torch.bool) if valid is None else valid.expand_as(squared_error)
    spatial = tuple(range(2, squared_error.ndim))
    group_means, group_present = [], []
    for group in (sdf_target <= 0, sdf_target > 0):
        group = (group & valid).float()
        count = group.sum(spatial)
        group_means.append((squared_error * group).sum(spatial) / count.clamp_min(1))
        group_present.append((count > 0).float())
    num_groups = group_present[0] + group_present[1]
    per_channel = (group_means[0] * group_present[0] + group_means[1] * group_present[1]) / num_groups.clamp_min(1)
    has_valid = num_groups > 0
    return per_channel[has_valid].sum() / has_valid.sum().clamp_min(1)


class LevelSetTask(AuxiliaryTask):
    """tanh level set; target compute_sdf (negative inside, 0 on the inner boundary unless zero_inner_boundary is
    False, all zeros for an absent class); MSE (class_balanced_sdf_loss if class_balanced_loss); consistency
    sigmoid(-k * level set) against the probability."""
    loss_name = 'sdf_loss'
    zero_target_means_absent = True

    def __init__(self, sharpness: float = DEFAULT_LEVEL_SET_SHARPNESS, zero_inner_boundary: bool = True,
                 class_balanced_loss: bool = False):
        self.sharpness = sharpness
        self.zero_inner_boundary = zero_inner_boundary
        self.class_balanced_loss = class_balanced_loss

    def target(self, segmentation: np.ndarray, labels_or_regions: Sequence[LabelOrRegion]) -> np.ndarray:
        return compute_sdf(segmentation, list(labels_or_regions), zero_inner_boundary=self.zero_inner_boundary)

    def activation(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.tanh(raw)

    def supervised_loss(self, raw: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor]) -> torch.Tensor:
        loss = class_balanced_sdf_loss if self.class_balanced_loss else sdf_loss
        return loss(self.activation(raw).float(), target, valid)

    def consistency_views(self, raw: torch.Tensor, probabilities: torch.Tensor) \
            -> Tuple[torch.Tensor, torch.Tensor]:
        return level_set_to_probability(self.activation(raw).float(), self.sharpness), probabilities


class LevelSetTeacherTask(LevelSetTask):
    """LevelSetTask whose level-set view carries no gradient in the consistency term: the consistency only teaches
    the segmentation to follow the level set (nnUNetTrainerDTC_LevelSetTeacher)."""

    def consistency_views(self, raw: torch.Tensor, probabilities: torch.Tensor) \
            -> Tuple[torch.Tensor, torch.Tensor]:
        level_set_view, probabilities = super().consistency_views(raw, probabilities)
        return level_set_view.detach(), probabilities
