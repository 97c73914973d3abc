"""A second auxiliary task for DTC: the boundary band of each foreground class.

Target: the morphological gradient of the class mask with a (2 w + 1)-voxel window (w = `width`), i.e. 1 on the
voxels within w voxels (in every axis) of a change between the class and the rest, on both sides of the boundary;
outside the patch counts as neither (a class that fills the patch has no boundary). Its differentiable twin on the
segmentation probabilities is the soft morphological gradient max-pool(p) - min-pool(p) over the same window, so a
network whose two outputs are both exact has a consistency of 0.

Supervised loss: class-balanced binary cross-entropy (HED, Xie & Tu, ICCV 2015): boundary voxels are rare (a few per
cent of a patch), so per sample and channel the positives are weighted by the share of negatives and the negatives
by the share of positives; without it the band's loss is dominated by "no boundary anywhere".
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask, LabelOrRegion

DEFAULT_BOUNDARY_WIDTH = 1  # voxels on each side of a boundary; the soft twin's window is then 3 voxels


def class_mask(segmentation: np.ndarray, entry: LabelOrRegion) -> np.ndarray:
    if isinstance(entry, (tuple, list)):
        return np.isin(segmentation, entry)
    return segmentation == entry


def boundary_band(segmentation: np.ndarray, labels_or_regions: Sequence[LabelOrRegion],
                  width: int = DEFAULT_BOUNDARY_WIDTH) -> np.ndarray:
    """float32 (len(labels_or_regions), *segmentation.shape): 1 where a (2 width + 1)-voxel window around the voxel
    holds both the class and something else, 0 elsewhere."""
    if segmentation.ndim not in (2, 3):
        raise ValueError(f'expected a 2D or 3D segmentation, got shape {segmentation.shape}')
    size = 2 * width + 1
    out = np.zeros((len(labels_or_regions), *segmentation.shape), dtype=np.float32)
    for channel, entry in zip(out, labels_or_regions):
        mask = class_mask(segmentation, entry).astype(np.uint8)
        # mode 'nearest' repeats the edge voxel: outside the patch is never a change
        channel[...] = ndimage.maximum_filter(mask, size=size, mode='nearest') != \
            ndimage.minimum_filter(mask, size=size, mode='nearest')
    return out


def soft_boundary(probabilities: torch.Tensor, width: int = DEFAULT_BOUNDARY_WIDTH) -> torch.Tensor:
    """max-pool(p) - min-pool(p) over a (2 width + 1)-voxel window, per channel, 2D (N, C, H, W) or 3D
    (N, C, D, H, W); the pools ignore what lies outside the patch, like boundary_band."""
    pool = {4: F.max_pool2d, 5: F.max_pool3d}[probabilities.ndim]
    size = 2 * width + 1
    return pool(probabilities, size, 1, width) + pool(-probabilities, size, 1, width)


def class_balanced_bce(logits: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor]) -> torch.Tensor:
    """HED's class-balanced BCE, per sample and channel, averaged: -(w+ sum_pos log p + w- sum_neg log(1 - p)) /
    voxels, with w+ = share of negatives and w- = share of positives among the valid voxels (1 and 0 for a channel
    with no positives, so that its loss still says "no boundary")."""
    logits, target = logits.float(), target.float()
    valid = torch.ones_like(target, dtype=torch.bool) if valid is None else valid.expand_as(target)
    valid_f = valid.float()
    spatial = tuple(range(2, target.ndim))
    num_valid = valid_f.sum(spatial, keepdim=True).clamp_min(1)
    positive_share = (target * valid_f).sum(spatial, keepdim=True) / num_valid
    has_positives = positive_share > 0
    positive_weight = torch.where(has_positives, 1 - positive_share, torch.ones_like(positive_share))
    negative_weight = torch.where(has_positives, positive_share, torch.ones_like(positive_share))
    weights = torch.where(target > 0.5, positive_weight, negative_weight) * valid_f
    per_voxel = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    return ((per_voxel * weights).sum(spatial) / num_valid.flatten(2).squeeze(2)).mean()


class BoundaryTask(AuxiliaryTask):
    """Sigmoid boundary band per class; class-balanced BCE; consistency with the soft morphological gradient of the
    segmentation probabilities (float32)."""
    loss_name = 'boundary_loss'

    def __init__(self, width: int = DEFAULT_BOUNDARY_WIDTH):
        self.width = width

    def target(self, segmentation: np.ndarray, labels_or_regions: Sequence[LabelOrRegion]) -> np.ndarray:
        return boundary_band(segmentation, labels_or_regions, self.width)

    def activation(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw)

    def supervised_loss(self, raw: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor]) -> torch.Tensor:
        return class_balanced_bce(raw, target, valid)

    def consistency_views(self, raw: torch.Tensor, probabilities: torch.Tensor) \
            -> Tuple[torch.Tensor, torch.Tensor]:
        return self.activation(raw.float()), soft_boundary(probabilities.float(), self.width)
