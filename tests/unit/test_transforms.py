"""Unlabelled patches skip the segmentation in nnU-Net's augmentation, yet get exactly the same image augmentation."""
import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.utils.nnunet_masking import MaskImageTransform
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_dtc.dataloading.transforms import first_segmentation_encoder, reads_segmentation, \
    unlabeled_training_transforms

PATCH = (16, 20, 24)
INITIAL_PATCH = (24, 28, 32)  # larger than the patch, as nnU-Net crops it for rotations and scaling


def nnunet_training_transforms(use_mask_for_norm: bool):
    return nnUNetTrainer.get_training_transforms(
        PATCH, (-np.pi / 6, np.pi / 6), [[1, 1, 1], [0.5, 0.5, 0.5]], (0, 1, 2), False,
        use_mask_for_norm=[use_mask_for_norm], foreground_labels=[1, 2])


def unlabeled_sample(seed: int):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn((1, *INITIAL_PATCH), generator=generator)
    segmentation = torch.zeros((1, *INITIAL_PATCH), dtype=torch.int16)
    segmentation[:, :3] = -1  # nnU-Net's label for voxels outside the nonzero mask
    return image, segmentation


def augmented(pipeline, seed: int, **sample) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return pipeline(**{name: tensor.clone() for name, tensor in sample.items()})


@pytest.mark.parametrize('seed', range(6))
def test_image_only_augmentation_gives_the_images_of_the_full_pipeline(seed):
    pipeline = nnunet_training_transforms(use_mask_for_norm=False)
    full = pipeline.transforms[:first_segmentation_encoder(pipeline.transforms)]
    image, segmentation = unlabeled_sample(seed)

    reference = augmented(type(pipeline)(full), seed, image=image, segmentation=segmentation)
    image_only = augmented(unlabeled_training_transforms(pipeline), seed, image=image)

    assert image_only['image'].shape == (1, *PATCH)
    assert torch.equal(image_only['image'], reference['image'])
    assert 'segmentation' not in image_only


def test_the_segmentation_is_read_only_when_the_image_is_masked_with_it():
    masked = unlabeled_training_transforms(nnunet_training_transforms(use_mask_for_norm=True))
    unmasked = unlabeled_training_transforms(nnunet_training_transforms(use_mask_for_norm=False))

    assert any(isinstance(t, MaskImageTransform) for t in masked.transforms)
    assert reads_segmentation(masked) and not reads_segmentation(unmasked)


def test_no_target_is_built_for_unlabelled_patches():
    pipeline = nnunet_training_transforms(use_mask_for_norm=False)
    image, segmentation = unlabeled_sample(1)

    result = augmented(unlabeled_training_transforms(pipeline), 1, image=image, segmentation=segmentation)

    assert isinstance(result['segmentation'], torch.Tensor)  # not the deep-supervision list of the labelled pipeline
    assert first_segmentation_encoder(pipeline.transforms) < len(pipeline.transforms)
