"""nnU-Net's training augmentation for unlabelled patches: the image transforms, without the target encoders."""
from typing import List

from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.nnunet.seg_to_onehot import MoveSegAsOneHotToDataTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform

from nnunetv2_dtc.sdf_target_transform import first_segmentation_encoder

# nnU-Net's transforms that read the segmentation to change the image: masking outside the nonzero mask
# (use_mask_for_norm) and the cascade's previous-stage input
_IMAGE_FROM_SEGMENTATION = (MaskImageTransform, MoveSegAsOneHotToDataTransform)


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
