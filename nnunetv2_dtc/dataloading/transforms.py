"""DTC's changes to nnU-Net's training augmentation: the SDF target of labelled patches, computed per sample after
every spatial transform, and the image-only pipeline of unlabelled patches."""
from typing import List, Sequence, Tuple, Union

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.nnunet.seg_to_onehot import MoveSegAsOneHotToDataTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform

from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask
from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTask
from nnunetv2_dtc.dataloading.batch import SDF_KEY, AppendSdfToSegmentationTransform

# nnU-Net's transforms that re-encode the label map into targets (regions, deep-supervision scales)
_SEGMENTATION_ENCODERS = (ConvertSegmentationToRegionsTransform, DownsampleSegForDSTransform)
# nnU-Net's transforms that read the segmentation to change the image: masking outside the nonzero mask
# (use_mask_for_norm) and the cascade's previous-stage input
_IMAGE_FROM_SEGMENTATION = (MaskImageTransform, MoveSegAsOneHotToDataTransform)


class AuxiliaryTargetTransform(BasicTransform):
    """Adds `data_dict['sdf']`: the auxiliary task's target (one channel per foreground class or region) of the
    label map in segmentation channel 0; for DTC's level set, its normalised SDF. Must run on the integer label map,
    i.e. before regions are one-hot encoded and before deep-supervision downsampling."""

    def __init__(self, task: AuxiliaryTask, foreground_labels_or_regions: Sequence[Union[int, Tuple[int, ...]]]):
        super().__init__()
        self.task = task
        self.foreground_labels_or_regions = [tuple(i) if isinstance(i, (list, tuple)) else int(i)
                                             for i in foreground_labels_or_regions]

    def apply(self, data_dict, **params):
        segmentation = data_dict['segmentation']
        if isinstance(segmentation, list):
            raise RuntimeError(f'{type(self).__name__} must run before DownsampleSegForDSTransform')
        data_dict[SDF_KEY] = torch.from_numpy(self.task.target(segmentation[0].numpy(),
                                                               self.foreground_labels_or_regions))
        return data_dict


class SignedDistanceTargetTransform(AuxiliaryTargetTransform):
    """AuxiliaryTargetTransform of DTC's level set: the normalised SDF (compute_sdf)."""

    def __init__(self, foreground_labels_or_regions: Sequence[Union[int, Tuple[int, ...]]]):
        super().__init__(LevelSetTask(), foreground_labels_or_regions)


def first_segmentation_encoder(transforms: List[BasicTransform]) -> int:
    """Index of the first transform that re-encodes the label map (regions, deep-supervision scales)."""
    return next((i for i, t in enumerate(transforms) if isinstance(t, _SEGMENTATION_ENCODERS)), len(transforms))


def with_sdf_targets(pipeline: ComposeTransforms, sdf_transform: AuxiliaryTargetTransform) -> ComposeTransforms:
    """A copy of nnU-Net's pipeline with `sdf_transform` placed just before the segmentation is re-encoded
    (regions, deep-supervision scales), i.e. after every spatial augmentation, and the SDF carried to the batch as
    the last entry of the segmentation list (batch.py)."""
    transforms: List[BasicTransform] = list(pipeline.transforms)
    transforms.insert(first_segmentation_encoder(transforms), sdf_transform)
    transforms.append(AppendSdfToSegmentationTransform())
    return ComposeTransforms(transforms)


def unlabeled_training_transforms(pipeline: ComposeTransforms) -> ComposeTransforms:
    """nnU-Net's training pipeline up to (not including) the segmentation encoders (regions, deep-supervision
    scales), so unlabelled patches get the same augmentation and no targets. Every transform also runs on an image
    alone (batchgeneratorsv2 skips the keys a sample lacks), except those that change the image according to the
    segmentation (see reads_segmentation)."""
    transforms: List[BasicTransform] = list(pipeline.transforms)[:first_segmentation_encoder(pipeline.transforms)]
    return ComposeTransforms(transforms)


def reads_segmentation(pipeline: ComposeTransforms) -> bool:
    """Whether a transform of `pipeline` changes the image according to the segmentation. An unlabelled case's
    segmentation holds no labels, only nnU-Net's nonzero mask (-1 outside, 0 inside), so only then is it needed."""
    return any(isinstance(t, _IMAGE_FROM_SEGMENTATION) for t in pipeline.transforms)
