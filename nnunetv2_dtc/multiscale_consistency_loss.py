"""DTC's consistency at every deep-supervision scale (issue #14, hypothesis 3; nnUNetTrainerDTC_MultiScaleConsistency).

nnU-Net supervises every decoder stage through its deep-supervision outputs, while DTC's consistency, the only term
the unlabelled patches take part in, reaches the decoder through the full-resolution output alone. Here the
consistency is a weighted mean over the scales: at scale s, the level-set view (computed at full resolution, where
the level set is) averaged down to that output's size against that output's foreground probabilities, with the
weights nnU-Net's DeepSupervisionWrapper gives the supervised loss (1/2^s, the lowest scale 0, normalised to sum 1).
At full resolution the term is DTC's; its weight among the scales is nnU-Net's w_0."""
from typing import List, Sequence

import torch
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from torch import nn
from torch.nn import functional as F

from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTask
from nnunetv2_dtc.loss import DTCLoss, foreground_probabilities


def view_at_scale(view: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """The full-resolution view averaged over each output voxel's block (area interpolation = adaptive average
    pooling), the fraction of that block the view calls foreground."""
    if tuple(view.shape[2:]) == tuple(spatial_shape):
        return view
    return F.interpolate(view, size=tuple(spatial_shape), mode='area')


class MultiScaleConsistencyDTCLoss(DTCLoss):
    """DTCLoss whose consistency covers each deep-supervision output, weighted by the segmentation loss's
    DeepSupervisionWrapper.weight_factors (without deep supervision: the full-resolution output alone, DTC's term).
    Only for level-set tasks, whose segmentation view is the probabilities themselves, so that a view averaged down
    compares with a lower-resolution output."""

    def __init__(self, segmentation_loss: nn.Module, *args, **kwargs):
        super().__init__(segmentation_loss, *args, **kwargs)
        if not isinstance(self.task, LevelSetTask):
            raise ValueError(f'The multi-scale consistency needs a level-set task; {type(self.task).__name__} is not')
        weights = segmentation_loss.weight_factors if isinstance(segmentation_loss, DeepSupervisionWrapper) else (1.0,)
        if weights[0] == 0:
            raise ValueError(f'The deep-supervision weights {tuple(weights)} leave out the full-resolution output')
        self.scale_weights = tuple(float(w) for w in weights)

    def _consistency_parts(self, outputs: Sequence[torch.Tensor], viewed_parts: Sequence[torch.Tensor],
                           seg_parts: Sequence[torch.Tensor], batch_parts: List[int]) -> List[torch.Tensor]:
        if len(outputs) != len(self.scale_weights):
            raise RuntimeError(f'{len(outputs)} network outputs but {len(self.scale_weights)} consistency scale '
                               f'weights: is deep supervision enabled?')
        num_auxiliary_channels = viewed_parts[0].shape[1]
        with torch.autocast(viewed_parts[0].device.type, enabled=False):
            full_resolution_probabilities = [foreground_probabilities(seg.float(), self.has_regions)
                                             for seg in seg_parts]
            level_set_views = [self.task.consistency_views(aux, probabilities)[0]
                               for aux, probabilities in zip(viewed_parts, full_resolution_probabilities)]
            parts = [torch.zeros((), device=viewed_parts[0].device) for _ in batch_parts]
            for scale, (weight, output) in enumerate(zip(self.scale_weights, outputs)):
                if weight == 0:
                    continue
                num_elements = sum(batch_parts) * num_auxiliary_channels * output.shape[2:].numel()
                probabilities_at_scale = full_resolution_probabilities if scale == 0 else \
                    [foreground_probabilities(seg.float(), self.has_regions) for seg in output.split(batch_parts)]
                for i, (view, probabilities) in enumerate(zip(level_set_views, probabilities_at_scale)):
                    if probabilities.shape[0] == 0:
                        continue
                    squared_error = (view_at_scale(view, probabilities.shape[2:]) - probabilities) ** 2
                    parts[i] = parts[i] + weight * squared_error.sum() / num_elements
        return parts
