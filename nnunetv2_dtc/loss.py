"""DTC's loss (Luo et al., AAAI 2021; official code train_la_dtc.py): nnU-Net's own (deep-supervision) segmentation
loss on the labelled samples, plus the auxiliary task's supervised loss on them (the level-set regression in DTC),
plus the dual-task consistency on all samples weighted by the ramp-up lambda(t)."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask
from nnunetv2_dtc.auxiliary_tasks.level_set import DEFAULT_LEVEL_SET_SHARPNESS, LevelSetTask, \
    level_set_to_probability, sdf_loss
from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.gradient_norms import gradient_norms
from nnunetv2_dtc.level_set_head import split_segmentation_and_auxiliary

# Defaults of the official DTC code (train_la_dtc.py and utils/ramps.py).
DEFAULT_SDF_LOSS_WEIGHT = 0.3  # beta
DEFAULT_MAX_CONSISTENCY_WEIGHT = 1.0  # lambda_max
SIGMOID_RAMPUP_STEEPNESS = 5.0  # exp(-5 (1 - t/T)^2), Laine & Aila 2017, as used by DTC

# the logged terms; 'sdf_loss' is the auxiliary task's supervised loss, whatever the task (its own name: loss_name)
LOSS_TERMS = ('supervised_loss', 'sdf_loss', 'consistency_loss')
__all__ = ['DEFAULT_LEVEL_SET_SHARPNESS', 'DTCLoss', 'consistency_squared_error_sum', 'level_set_to_probability',
           'sdf_loss', 'sigmoid_rampup_weight']


def sigmoid_rampup_weight(step: float, rampup_length: float, max_weight: float) -> float:
    """lambda(t) = max_weight * exp(-5 (1 - t/T)^2), t clipped to [0, T]; T <= 0 means no ramp-up."""
    if rampup_length <= 0:
        return float(max_weight)
    phase = 1.0 - float(np.clip(step, 0.0, rampup_length)) / rampup_length
    return float(max_weight * np.exp(-SIGMOID_RAMPUP_STEEPNESS * phase * phase))


def foreground_probabilities(seg_logits: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """Probability of each foreground class (softmax without the background channel) or region (sigmoid)."""
    if has_regions:
        return torch.sigmoid(seg_logits)
    return torch.softmax(seg_logits, 1)[:, 1:]


def present_classes(sdf_target: torch.Tensor) -> torch.Tensor:
    """Bool (samples, channels, 1, ...) broadcastable to `sdf_target`: whether the class (or region) occurs in the
    sample. compute_sdf gives an all-zero channel exactly when it does not: a present class has a non-zero SDF
    outside it, or -1 when it fills the patch."""
    present = sdf_target.flatten(2).abs().amax(2) > 0
    return present.view(*present.shape, *([1] * (sdf_target.ndim - 2)))


def consistency_squared_error_sum(level_set: torch.Tensor, seg_logits: torch.Tensor, has_regions: bool,
                                  sharpness: float) -> torch.Tensor:
    """sum((sigmoid(-k * level_set) - p)^2) over all samples, channels and voxels, computed in float32. DTC's
    consistency term is this sum over the whole batch divided by the level set's number of elements. The level-set
    formula, written out; DTCLoss computes it through LevelSetTask (task_consistency_sum), and a test checks that
    the two agree bit for bit."""
    with torch.autocast(level_set.device.type, enabled=False):
        from_level_set = level_set_to_probability(level_set.float(), sharpness)
        probabilities = foreground_probabilities(seg_logits.float(), has_regions)
        return torch.sum((from_level_set - probabilities) ** 2)


def task_consistency_sum(task: AuxiliaryTask, raw_auxiliary: torch.Tensor, seg_logits: torch.Tensor,
                         has_regions: bool) -> torch.Tensor:
    """sum((view of the auxiliary output - view of the foreground probabilities)^2), in float32 (base.py)."""
    with torch.autocast(raw_auxiliary.device.type, enabled=False):
        from_task, from_segmentation = task.consistency_views(
            raw_auxiliary, foreground_probabilities(seg_logits.float(), has_regions))
        return torch.sum((from_task - from_segmentation) ** 2)


class DTCLoss(nn.Module):
    """total = supervised + sdf_weight * auxiliary task's loss + consistency_weight * consistency; for DTC's level set
    (the default task, LevelSetTask(level_set_sharpness)): supervised + beta * MSE(level set, SDF) + lambda(t) *
    mean((sigmoid(-k level set) - p)^2).

    `segmentation_loss` is the loss nnUNetTrainer._build_loss returns (Dice+CE or Dice+BCE, wrapped for deep
    supervision), applied unchanged to the labelled samples. The SDF term covers labelled samples (minus
    ignore-label voxels, and with `mask_absent_classes` the channels of classes absent from a sample), the
    consistency term all samples. Called with a plain nnU-Net target (validation batches, eval-mode outputs), it is
    exactly `segmentation_loss`. The last training call's unweighted terms are kept in `last_terms` for logging;
    when `measure_gradients_of` holds parameters, that call also puts each weighted term's gradient norm with
    respect to them into `last_gradient_norms` (gradient_norms.py) and clears `measure_gradients_of`. When
    `teacher_auxiliary` holds a teacher network's raw auxiliary channels for the whole batch (ema_teacher.py), that
    call takes the consistency's task view from them instead of the network's own (so the consistency trains the
    segmentation only) and clears it; with `teacher_views_labeled` False the teacher's channels cover the unlabelled
    samples only, and the labelled ones keep the network's own view (and its gradient), as in plain DTC."""

    def __init__(self, segmentation_loss: nn.Module, num_segmentation_channels: int, has_regions: bool,
                 ignore_label: Optional[int], sdf_weight: float,
                 level_set_sharpness: float = DEFAULT_LEVEL_SET_SHARPNESS, mask_absent_classes: bool = False,
                 task: Optional[AuxiliaryTask] = None):
        super().__init__()
        self.task = LevelSetTask(level_set_sharpness) if task is None else task
        if mask_absent_classes and not self.task.zero_target_means_absent:
            raise ValueError(f'mask_absent_classes needs a task whose all-zero target means an absent class; '
                             f'{type(self.task).__name__} does not')
        self.segmentation_loss = segmentation_loss
        self.num_segmentation_channels = num_segmentation_channels
        self.has_regions = has_regions
        self.ignore_label = ignore_label
        self.sdf_weight = sdf_weight
        self.mask_absent_classes = mask_absent_classes
        self.consistency_weight = 0.0
        self.last_terms: Dict[str, torch.Tensor] = {}
        self.measure_gradients_of: Optional[Sequence[nn.Parameter]] = None
        self.last_gradient_norms: Dict[str, float] = {}
        self.teacher_auxiliary: Optional[torch.Tensor] = None
        self.teacher_views_labeled = True

    def forward(self, output, target) -> torch.Tensor:
        if not isinstance(target, DTCTargets):
            return self.segmentation_loss(output, target)
        outputs = output if isinstance(output, (list, tuple)) else [output]
        seg_logits, auxiliary = split_segmentation_and_auxiliary(outputs[0], self.num_segmentation_channels)
        n = target.num_labeled
        # labelled and unlabelled parts by `split` (see split_segmentation_and_level_set), the consistency summed
        # over both parts so that each part's gradient is written once
        batch_parts = [n, seg_logits.shape[0] - n]
        seg_parts, auxiliary_parts = seg_logits.split(batch_parts), auxiliary.split(batch_parts)
        viewed_parts = self._viewed_auxiliary_parts(auxiliary, auxiliary_parts, batch_parts)
        labeled_consistency, unlabeled_consistency = self._consistency_parts(outputs, viewed_parts, seg_parts,
                                                                             batch_parts)
        consistency = labeled_consistency + unlabeled_consistency
        if n == 0:
            supervised = level_set_loss = torch.zeros((), device=consistency.device)
        else:
            supervised, level_set_loss = self._labeled_terms(outputs, seg_parts[0], auxiliary_parts[0], target, n)
        self.last_terms = {'supervised_loss': supervised.detach(), 'sdf_loss': level_set_loss.detach(),
                           'consistency_loss': consistency.detach()}
        weighted = {'supervised': supervised, 'sdf': self.sdf_weight * level_set_loss,
                    'consistency': self.consistency_weight * consistency,
                    'consistency_unlabeled': self.consistency_weight * unlabeled_consistency}
        if self.measure_gradients_of is not None:
            self.last_gradient_norms = gradient_norms(weighted, self.measure_gradients_of)
            self.measure_gradients_of = None
        return weighted['supervised'] + weighted['sdf'] + weighted['consistency']

    def _consistency_parts(self, outputs: Sequence[torch.Tensor], viewed_parts: Sequence[torch.Tensor],
                           seg_parts: Sequence[torch.Tensor], batch_parts: List[int]) -> List[torch.Tensor]:
        """The consistency's labelled and unlabelled sums at full resolution, each divided by the batch's number of
        auxiliary elements, so that the two add up to the batch mean."""
        num_elements = sum(part.numel() for part in viewed_parts)
        return [task_consistency_sum(self.task, aux, seg, self.has_regions) / num_elements
                for aux, seg in zip(viewed_parts, seg_parts)]

    def _viewed_auxiliary_parts(self, auxiliary: torch.Tensor, auxiliary_parts: Sequence[torch.Tensor],
                                batch_parts: List[int]) -> Sequence[torch.Tensor]:
        """The labelled and unlabelled auxiliary channels the consistency's task view is taken from."""
        if self.teacher_auxiliary is None:
            return auxiliary_parts
        if self.teacher_views_labeled:
            return self._taken_teacher_auxiliary(auxiliary.shape).split(batch_parts)
        return auxiliary_parts[0], self._taken_teacher_auxiliary(auxiliary_parts[1].shape)

    def _taken_teacher_auxiliary(self, shape: torch.Size) -> torch.Tensor:
        teacher_auxiliary, self.teacher_auxiliary = self.teacher_auxiliary.detach(), None
        if teacher_auxiliary.shape != shape:
            raise RuntimeError(f'The teacher gave auxiliary channels of shape {tuple(teacher_auxiliary.shape)} for a '
                               f'network output of shape {tuple(shape)}: it must see the same batch')
        return teacher_auxiliary

    def _labeled_terms(self, outputs, labeled_seg_logits, labeled_auxiliary, target: DTCTargets, n: int):
        labeled_outputs = [labeled_seg_logits] + [o[:n] for o in outputs[1:]]
        if isinstance(target.segmentation, list):
            if len(labeled_outputs) != len(target.segmentation):
                raise RuntimeError(f'{len(labeled_outputs)} network outputs but {len(target.segmentation)} '
                                   f'deep-supervision targets: a target scale would be silently dropped')
            supervised = self.segmentation_loss(labeled_outputs, target.segmentation)
            full_resolution_target = target.segmentation[0]
        else:
            supervised = self.segmentation_loss(labeled_outputs[0], target.segmentation)
            full_resolution_target = target.segmentation
        level_set_loss = self.task.supervised_loss(labeled_auxiliary, target.sdf,
                                                   self._sdf_loss_voxels(target.sdf, full_resolution_target))
        return supervised, level_set_loss

    def _sdf_loss_voxels(self, sdf_target: torch.Tensor, full_resolution_target: torch.Tensor) \
            -> Optional[torch.Tensor]:
        annotated = self._annotated(full_resolution_target)
        if not self.mask_absent_classes:
            return annotated
        present = present_classes(sdf_target)
        return present if annotated is None else present & annotated

    def _annotated(self, full_resolution_target: torch.Tensor) -> Optional[torch.Tensor]:
        """Voxels that take part in the SDF loss: all but the ignore label's (nnU-Net encodes it as the last
        region channel in region training)."""
        if self.ignore_label is None:
            return None
        if self.has_regions:
            return full_resolution_target[:, -1:] == 0
        return full_resolution_target != self.ignore_label
