"""Augmented random patches of unlabelled cases: nnU-Net's sampling, storage and transforms, image only."""
import functools
import os

import numpy as np
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from threadpoolctl import ThreadpoolController

from nnunetv2_dtc.dataloading.transforms import reads_segmentation

# what nnUNetDataLoader pads crops with beyond the image: 0 for the image, -1 (outside the nonzero mask) for the
# segmentation
IMAGE_PADDING = 0
SEGMENTATION_PADDING = -1
ONE_THREAD = 1  # nnUNetDataLoader limits thread pools to one thread while it builds a batch


@functools.lru_cache(maxsize=None)
def _thread_pools_of_process(pid: int) -> ThreadpoolController:
    return ThreadpoolController()


def _thread_pools() -> ThreadpoolController:
    """This process's thread pools, looked up once per process (a worker process gets its own)."""
    return _thread_pools_of_process(os.getpid())


class UnlabeledPatchLoader(nnUNetDataLoader):
    """Batches of unlabelled patches: nnUNetDataLoader's case sampling and random crops (no foreground oversampling),
    nnU-Net's stored cases and `transforms` (nnU-Net's training augmentation without the target encoders, see
    unlabeled_training_transforms). `generate_train_batch` returns {'data', 'keys'}.

    nnUNetDataLoader.generate_train_batch would also crop and augment each case's segmentation, which for an
    unlabelled case is only nnU-Net's nonzero mask, and scans every loaded library for thread pools on each batch
    (threadpoolctl reads /proc/self/maps: about 6 ms, as long as augmenting a 48^3 patch). This loader reads the
    segmentation only where a transform changes the image with it (use_mask_for_norm) and looks the thread pools up
    once per process."""

    def __init__(self, data, batch_size: int, patch_size, final_patch_size, label_manager,
                 transforms: ComposeTransforms):
        super().__init__(data, batch_size, patch_size, final_patch_size, label_manager,
                         oversample_foreground_percent=0.0, transforms=transforms)
        # unlabelled cases have no annotated voxels to sample from: always crop at random
        self.has_ignore = False
        self.reads_segmentation = reads_segmentation(transforms)

    def generate_train_batch(self) -> dict:
        keys = self.get_indices()
        with torch.no_grad(), _thread_pools().limit(limits=ONE_THREAD):
            images = torch.stack([self._augmented_patch(key) for key in keys])
        return {'data': images, 'keys': keys}

    def _augmented_patch(self, key: str) -> torch.Tensor:
        data, segmentation, _, _ = self._data.load_case(key)
        lower, upper = self.get_bbox(data.shape[1:], force_fg=False, class_locations=None)
        bbox = [[lb, ub] for lb, ub in zip(lower, upper)]
        sample = {'image': torch.from_numpy(crop_and_pad_nd(data, bbox, IMAGE_PADDING)).float()}
        if self.reads_segmentation:
            sample['segmentation'] = torch.from_numpy(
                crop_and_pad_nd(segmentation, bbox, SEGMENTATION_PADDING, cast_cropped_to=np.int16)).to(torch.int16)
        if self.patch_size_was_2d:
            sample = {name: tensor[:, 0] for name, tensor in sample.items()}
        return self.transforms(**sample)['image']
