"""Signed-distance targets as a batchgeneratorsv2 transform, computed per sample after augmentation."""
from typing import List, Sequence, Tuple, Union

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform

from nnunetv2_dtc.sdf import compute_sdf

SDF_KEY = 'sdf'


class SignedDistanceTargetTransform(BasicTransform):
    """Adds `data_dict['sdf']`: DTC's normalised SDF (one channel per foreground class or region) of the label map
    in segmentation channel 0. Must run on the integer label map, i.e. before regions are one-hot encoded and
    before deep-supervision downsampling."""

    def __init__(self, foreground_labels_or_regions: Sequence[Union[int, Tuple[int, ...]]]):
        super().__init__()
        self.foreground_labels_or_regions = [tuple(i) if isinstance(i, (list, tuple)) else int(i)
                                             for i in foreground_labels_or_regions]

    def apply(self, data_dict, **params):
        segmentation = data_dict['segmentation']
        if isinstance(segmentation, list):
            raise RuntimeError('SignedDistanceTargetTransform must run before DownsampleSegForDSTransform')
        data_dict[SDF_KEY] = torch.from_numpy(compute_sdf(segmentation[0].numpy(), self.foreground_labels_or_regions))
        return data_dict


class AppendSdfToSegmentationTransform(BasicTransform):
    """Moves `data_dict['sdf']` to the end of the segmentation list. nnU-Net's data loader keeps only `image` and
    `segmentation` of a transform's output (and batches list entries one by one, each with its own dtype), so this
    is how the SDF target reaches the batch. Runs last, after deep-supervision downsampling."""

    def apply(self, data_dict, **params):
        segmentation = data_dict['segmentation']
        targets = list(segmentation) if isinstance(segmentation, list) else [segmentation]
        data_dict['segmentation'] = targets + [data_dict.pop(SDF_KEY)]
        return data_dict


_SEGMENTATION_ENCODERS = (ConvertSegmentationToRegionsTransform, DownsampleSegForDSTransform)


def first_segmentation_encoder(transforms: List[BasicTransform]) -> int:
    """Index of the first transform that re-encodes the label map (regions, deep-supervision scales)."""
    return next((i for i, t in enumerate(transforms) if isinstance(t, _SEGMENTATION_ENCODERS)), len(transforms))


def with_sdf_targets(pipeline: ComposeTransforms, sdf_transform: SignedDistanceTargetTransform) -> ComposeTransforms:
    """A copy of nnU-Net's pipeline with `sdf_transform` placed just before the segmentation is re-encoded
    (regions, deep-supervision scales), i.e. after every spatial augmentation, and the SDF carried to the batch as
    the last entry of the segmentation list."""
    transforms: List[BasicTransform] = list(pipeline.transforms)
    transforms.insert(first_segmentation_encoder(transforms), sdf_transform)
    transforms.append(AppendSdfToSegmentationTransform())
    return ComposeTransforms(transforms)

