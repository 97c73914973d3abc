"""nnU-Net's own (deep-supervision) segmentation loss on the labelled samples plus DTC's two terms."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Union

import torch
from torch import nn

from nnunetv2_dtc.dtc_losses import consistency_squared_error_sum, sdf_loss
from nnunetv2_dtc.level_set_head import split_segmentation_and_level_set

SegmentationTarget = Union[torch.Tensor, List[torch.Tensor]]
LOSS_TERMS = ('supervised_loss', 'sdf_loss', 'consistency_loss')


@dataclass
class DTCTargets:
    """What a DTC training batch carries as `target`: nnU-Net's segmentation target(s) of the labelled samples,
    their SDF targets, and which samples of the batch are labelled (labelled ones first). `to` has the tensor
    signature so that nnUNetTrainer.train_step moves it to the device unchanged; `is_labeled` stays on the CPU."""
    segmentation: SegmentationTarget
    sdf: torch.Tensor
    is_labeled: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> 'DTCTargets':
        segmentation = [s.to(device, non_blocking=non_blocking) for s in self.segmentation] \
            if isinstance(self.segmentation, list) else self.segmentation.to(device, non_blocking=non_blocking)
        return DTCTargets(segmentation, self.sdf.to(device, non_blocking=non_blocking), self.is_labeled)

    @property
    def num_labeled(self) -> int:
        num_labeled = int(self.is_labeled.sum())
        if not bool(self.is_labeled[:num_labeled].all()):
            raise ValueError('DTC batches must hold their labelled samples first')
        return num_labeled


class DTCLoss(nn.Module):
    """total = supervised + sdf_weight * MSE(level set, SDF) + consistency_weight * consistency.

    `segmentation_loss` is the loss nnUNetTrainer._build_loss returns (Dice+CE or Dice+BCE, wrapped for deep
    supervision), applied unchanged to the labelled samples. The SDF term covers labelled samples (minus
    ignore-label voxels), the consistency term all samples. Called with a plain nnU-Net target (validation
    batches, eval-mode outputs), it is exactly `segmentation_loss`. The last training call's unweighted terms
    are kept in `last_terms` for logging."""

    def __init__(self, segmentation_loss: nn.Module, num_segmentation_channels: int, has_regions: bool,
                 ignore_label: Optional[int], sdf_weight: float, level_set_sharpness: float):
        super().__init__()
        self.segmentation_loss = segmentation_loss
        self.num_segmentation_channels = num_segmentation_channels
        self.has_regions = has_regions
        self.ignore_label = ignore_label
        self.sdf_weight = sdf_weight
        self.level_set_sharpness = level_set_sharpness
        self.consistency_weight = 0.0
        self.last_terms: Dict[str, torch.Tensor] = {}

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
        consistency = sum(consistency_squared_error_sum(ls, seg, self.has_regions, self.level_set_sharpness)
                          for ls, seg in zip(level_set_parts, seg_parts)) / level_set.numel()
        if n == 0:
            supervised = level_set_loss = torch.zeros((), device=consistency.device)
        else:
            supervised, level_set_loss = self._labeled_terms(outputs, seg_parts[0], level_set_parts[0], target, n)
        self.last_terms = {'supervised_loss': supervised.detach(), 'sdf_loss': level_set_loss.detach(),
                           'consistency_loss': consistency.detach()}
        return supervised + self.sdf_weight * level_set_loss + self.consistency_weight * consistency

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
        level_set_loss = sdf_loss(labeled_level_set.float(), target.sdf, self._annotated(full_resolution_target))
        return supervised, level_set_loss

    def _annotated(self, full_resolution_target: torch.Tensor) -> Optional[torch.Tensor]:
        """Voxels that take part in the SDF loss: all but the ignore label's (nnU-Net encodes it as the last
        region channel in region training)."""
        if self.ignore_label is None:
            return None
        if self.has_regions:
            return full_resolution_target[:, -1:] == 0
        return full_resolution_target != self.ignore_label
