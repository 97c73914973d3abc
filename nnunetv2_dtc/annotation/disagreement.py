"""The dual-task disagreement score of one case.

A DTC model sees each class twice: through its segmentation probabilities p and through its auxiliary task (the
level set). The two views the consistency term compares (AuxiliaryTask.consistency_views: sigmoid(-k * level set)
and p for DTC) should agree; where they do not, the model is unsure. Per foreground class c:

    score_c = mean over V_c of |view_task - view_segmentation|,  V_c = voxels where either view exceeds 0.5

(0 when no voxel does: both views say the class is absent), and the case's score is the mean of score_c over the
classes. Restricting to V_c keeps a small structure's disagreement from being diluted by the background, where
both views agree trivially.
"""
from typing import List, Tuple

import torch

from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask
from nnunetv2_dtc.loss import foreground_probabilities

FOREGROUND_THRESHOLD = 0.5  # a view "calls foreground" above it


def disagreement_views(task: AuxiliaryTask, raw_auxiliary: torch.Tensor, seg_logits: torch.Tensor,
                       has_regions: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """(task view, segmentation view), float32 (classes, *spatial), of one case's logits (channels, *spatial)."""
    with torch.no_grad():
        probabilities = foreground_probabilities(seg_logits[None].float(), has_regions)
        task_view, segmentation_view = task.consistency_views(raw_auxiliary[None].float(), probabilities)
    return task_view[0], segmentation_view[0]


def disagreement_scores(task_view: torch.Tensor, segmentation_view: torch.Tensor) -> Tuple[float, List[float]]:
    """(case score, per-class scores) as defined in the module docstring."""
    per_class = []
    for task_channel, segmentation_channel in zip(task_view, segmentation_view):
        considered = (task_channel > FOREGROUND_THRESHOLD) | (segmentation_channel > FOREGROUND_THRESHOLD)
        difference = (task_channel - segmentation_channel).abs()
        per_class.append(float(difference[considered].mean()) if considered.any() else 0.0)
    return float(sum(per_class) / len(per_class)), per_class
