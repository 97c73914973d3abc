"""The interface of DTC's auxiliary task.

DTC (Luo et al., AAAI 2021) pairs the segmentation with a second, differentiable task and asks the two to agree on
every patch, labelled or not; the paper names edge maps and keypoints besides its level set. A task here says what
its output channels (one per foreground class or region, added to nnU-Net's full-resolution head) learn and how they
are compared with the segmentation probabilities:

- `target`: its float32 target (channels, *spatial) from a labelled patch's integer label map, computed inside
  nnU-Net's loader workers after every spatial augmentation (so it must be picklable and numpy-only);
- `activation`: what its raw channels mean (tanh for the level set);
- `supervised_loss`: against the target on the labelled patches, voxels outside `valid` (the ignore label) excluded;
- `consistency_views`: two float32 tensors of the same shape in [0, 1], one from its raw channels and one from the
  segmentation's foreground probabilities; DTC's consistency is the mean squared difference of the two over all
  patches.
"""
from abc import ABC, abstractmethod
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

LabelOrRegion = Union[int, Tuple[int, ...]]


class AuxiliaryTask(ABC):
    # the name of its supervised term in logs and plots
    loss_name: str = 'auxiliary_loss'
    # whether an all-zero target channel means exactly "this class is absent from the patch" (the SDF's convention),
    # which masking absent classes out of the supervised loss relies on
    zero_target_means_absent: bool = False

    @abstractmethod
    def target(self, segmentation: np.ndarray, labels_or_regions: Sequence[LabelOrRegion]) -> np.ndarray:
        """float32 (len(labels_or_regions), *segmentation.shape) from a 2D or 3D integer label map."""

    @abstractmethod
    def activation(self, raw: torch.Tensor) -> torch.Tensor:
        """The task's output from its raw channels."""

    @abstractmethod
    def supervised_loss(self, raw: torch.Tensor, target: torch.Tensor, valid: Optional[torch.Tensor]) -> torch.Tensor:
        """Scalar loss of the labelled samples' raw channels; `valid` (broadcastable bool) or None for all voxels."""

    @abstractmethod
    def consistency_views(self, raw: torch.Tensor, probabilities: torch.Tensor) \
            -> Tuple[torch.Tensor, torch.Tensor]:
        """(view of the raw channels, view of the foreground probabilities), float32, same shape."""
