"""nnU-Net's training augmentation for unlabelled patches, applied to the image alone where nothing needs the
segmentation."""
from typing import List

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.nnunet.seg_to_onehot import MoveSegAsOneHotToDataTransform
from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform

from nnunetv2_dtc.sdf_target_transform import first_segmentation_encoder

# nnU-Net's transforms that read the segmentation to change the image: masking outside the nonzero mask
# (use_mask_for_norm) and the cascade's previous-stage input
_IMAGE_FROM_SEGMENTATION = (MaskImageTransform, MoveSegAsOneHotToDataTransform)


class WithoutSegmentationTransform(BasicTransform):
    """Runs `transforms` on the image only and hands back a one-voxel placeholder segmentation.

    An unlabelled case's segmentation holds no labels, only nnU-Net's nonzero mask (-1 outside, 0 inside), yet
    nnU-Net's spatial augmentation would resample it like a label map (one interpolation per value) for every
    patch. nnU-Net's loader batches a segmentation per
    sample, hence the placeholder; the DTC loader never reads it."""

    def __init__(self, transforms: ComposeTransforms):
        super().__init__()
        self.transforms = transforms

    def apply(self, data_dict, **params):
        segmentation = data_dict.pop('segmentation')
        data_dict = self.transforms(**data_dict)
        data_dict['segmentation'] = torch.zeros((1,) * segmentation.ndim, dtype=segmentation.dtype)
        return data_dict


def unlabeled_training_transforms(pipeline: ComposeTransforms) -> ComposeTransforms:
    """nnU-Net's training pipeline up to (not including) the segmentation encoders, so unlabelled patches get the
    same augmentation and no targets. The segmentation stays in only when a transform reads it to change the image
    (MaskImageTransform with use_mask_for_norm)."""
    transforms: List[BasicTransform] = list(pipeline.transforms)[:first_segmentation_encoder(pipeline.transforms)]
    if any(isinstance(t, _IMAGE_FROM_SEGMENTATION) for t in transforms):
        return ComposeTransforms(transforms)
    return ComposeTransforms([WithoutSegmentationTransform(ComposeTransforms(transforms))])
