"""DTC's loss (Luo et al., AAAI 2021; official code train_la_dtc.py): nnU-Net's own (deep-supervision) segmentation
loss on the labelled samples, plus the level-set regression on them, plus the dual-task consistency on all samples
weighted by the ramp-up lambda(t)."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn

from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.gradient_norms import gradient_norms
from nnunetv2_dtc.level_set_head import split_segmentation_and_level_set

# Defaults of the official DTC code (train_la_dtc.py and utils/ramps.py).
DEFAULT_SDF_LOSS_WEIGHT = 0.3  # beta
DEFAULT_LEVEL_SET_SHARPNESS = 1500.0  # k in sigmoid(-k * level_set)
DEFAULT_MAX_CONSISTENCY_WEIGHT = 1.0  # lambda_max
SIGMOID_RAMPUP_STEEPNESS = 5.0  # exp(-5 (1 - t/T)^2), Laine & Aila 2017, as used by DTC

LOSS_TERMS = ('supervised_loss', 'sdf_loss', 'consistency_loss')


def sigmoid_rampup_weight(step: float, rampup_length: float, max_weight: float) -> float:
    """lambda(t) = max_weight * exp(-5 (1 - t/T)^2), t clipped to [0, T]; T <= 0 means no ramp-up."""
    if rampup_length <= 0:
        return float(max_weight)
    phase = 1.0 - float(np.clip(step, 0.0, rampup_length)) / rampup_length
    return float(max_weight * np.exp(-SIGMOID_RAMPUP_STEEPNESS * phase * phase))


def level_set_to_probability(level_set: torch.Tensor, sharpness: float) -> torch.Tensor:
    """DTC's smooth approximation of the Heaviside function that maps a level set to a foreground probability."""
    return torch.sigmoid(-sharpness * level_set)


def foreground_probabilities(seg_logits: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """Probability of each foreground class (softmax without the background channel) or region (sigmoid)."""
    if has_regions:
        return torch.sigmoid(seg_logits)
    return torch.softmax(seg_logits, 1)[:, 1:]


def sdf_loss(level_set: torch.Tensor, sdf_target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MSE between predicted level set and SDF target; `valid` (broadcastable bool) excludes voxels such as the
    ignore label."""
    squared_error = (level_set - sdf_target) ** 2
    if valid is None:
        return squared_error.mean()
    valid = valid.expand_as(squared_error)
    return squared_error[valid].sum() / valid.sum().clamp_min(1)


def present_classes(sdf_target: torch.Tensor) -> torch.Tensor:
    """Bool (samples, channels, 1, ...) broadcastable to `sdf_target`: whether the class (or region) occurs in the
    sample. compute_sdf gives an all-zero channel exactly when it does not: a present class has a non-zero SDF
    outside it, or -1 when it fills the patch."""
    present = sdf_target.flatten(2).abs().amax(2) > 0
    return present.view(*present.shape, *([1] * (sdf_target.ndim - 2)))


def consistency_squared_error_sum(level_set: torch.Tensor, seg_logits: torch.Tensor, has_regions: bool,
                                  sharpness: float) -> torch.Tensor:
    """sum((sigmoid(-k * level_set) - p)^2) over all samples, channels and voxels, computed in float32. DTC's
    consistency term is this sum over the whole batch divided by the level set's number of elements."""
    with torch.autocast(level_set.device.type, enabled=False):
        from_level_set = level_set_to_probability(level_set.float(), sharpness)
        probabilities = foreground_probabilities(seg_logits.float(), has_regions)
        return torch.sum((from_level_set - probabilities) ** 2)


class DTCLoss(nn.Module):
    """total = supervised + sdf_weight * MSE(level set, SDF) + consistency_weight * consistency.

    `segmentation_loss` is the loss nnUNetTrainer._build_loss returns (Dice+CE or Dice+BCE, wrapped for deep
    supervision), applied unchanged to the labelled samples. The SDF term covers labelled samples (minus
    ignore-label voxels, and with `mask_absent_classes` the channels of classes absent from a sample), the
    consistency term all samples. Called with a plain nnU-Net target (validation batches, eval-mode outputs), it is
    exactly `segmentation_loss`. The last training call's unweighted terms are kept in `last_terms` for logging;
    when `measure_gradients_of` holds parameters, that call also puts each weighted term's gradient norm with
    respect to them into `last_gradient_norms` (gradient_norms.py) and clears `measure_gradients_of`."""

    def __init__(self, segmentation_loss: nn.Module, num_segmentation_channels: int, has_regions: bool,
                 ignore_label: Optional[int], sdf_weight: float, level_set_sharpness: float,
                 mask_absent_classes: bool = False):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.num_segmentation_channels = num_segmentation_channels
        self.has_regions = has_regions
        self.ignore_label = ignore_label
        self.sdf_weight = sdf_weight
        self.level_set_sharpness = level_set_sharpness
        self.mask_absent_classes = mask_absent_classes
        self.consistency_weight = 0.0
        self.last_terms: Dict[str, torch.Tensor] = {}
        self.measure_gradients_of: Optional[Sequence[nn.Parameter]] = None
        self.last_gradient_norms: Dict[str, float] = {}

    def forward(self, output, target) -> torch.Tensor:
        if not isinstance(target, DTCTargets):
            return self.segmentation_loss(output, target)
        outputs = output if isinstance(output, (list, tuple)) else [output]
        seg_logits, level_set = split_segmentation_and_level_set(outputs[0], self.num_segmentation_channels)
        n = target.num_labeled
        # labelled and unlabelled parts by `split` (see split_segmentation_and_level_set), the consistency summed
        # over both parts so that each part's gradient is written once
        batch_parts = [n, seg_logits.shape[0] - n]
        seg_parts, level_set_parts = seg_logits.split(batch_parts), level_set.split(batch_parts)
        labeled_consistency, unlabeled_consistency = (
            consistency_squared_error_sum(ls, seg, self.has_regions, self.level_set_sharpness) / level_set.numel()
            for ls, seg in zip(level_set_parts, seg_parts))
        consistency = labeled_consistency + unlabeled_consistency
        if n == 0:
            supervised = level_set_loss = torch.zeros((), device=consistency.device)
        else:
            supervised, level_set_loss = self._labeled_terms(outputs, seg_parts[0], level_set_parts[0], target, n)
        self.last_terms = {'supervised_loss': supervised.detach(), 'sdf_loss': level_set_loss.detach(),
                           'consistency_loss': consistency.detach()}
        weighted = {'supervised': supervised, 'sdf': self.sdf_weight * level_set_loss,
                    'consistency': self.consistency_weight * consistency,
                    'consistency_unlabeled': self.consistency_weight * unlabeled_consistency}
        if self.measure_gradients_of is not None:
            self.last_gradient_norms = gradient_norms(weighted, self.measure_gradients_of)
            self.measure_gradients_of = None
        return weighted['supervised'] + weighted['sdf'] + weighted['consistency']

    def _labeled_terms(self, outputs, labeled_seg_logits, labeled_level_set, target: DTCTargets, n: int):
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
        level_set_loss = sdf_loss(labeled_level_set.float(), target.sdf, self._sdf_loss_voxels(target.sdf,
                                                                                               full_resolution_target))
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
