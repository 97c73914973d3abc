"""Batches of labelled patches (nnU-Net's own loader) followed by unlabelled patches, built in the worker processes."""
from typing import List, Optional

import torch
from batchgenerators.dataloading.data_loader import SlimDataLoaderBase
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

from nnunetv2_dtc.dtc_loss import DTCTargets
from nnunetv2_dtc.unlabeled_loader import UnlabeledPatchLoader


class LabeledUnlabeledDataLoader(SlimDataLoaderBase):
    """Wraps nnU-Net's labelled loader (its sampling, foreground oversampling and augmentation, plus the SDF
    target that `with_sdf_targets` appends to the segmentation list) and appends a batch of unlabelled patches
    (UnlabeledPatchLoader: random crops, the same augmentation). The labelled samples come first.

    The batch holds plain tensors and lists only, which nnU-Net's augmenter pins for the GPU copy:
    `batch['target']` is the labelled samples' segmentation target(s) exactly as nnU-Net's loader returns them,
    followed by their SDF targets; `batch['is_labeled']` says which samples are labelled. `dtc_targets` turns
    them into the loss's DTCTargets."""

    def __init__(self, labeled_loader: nnUNetDataLoader, unlabeled_loader: Optional[UnlabeledPatchLoader]):
        num_unlabeled = 0 if unlabeled_loader is None else unlabeled_loader.batch_size
        super().__init__(None, labeled_loader.batch_size + num_unlabeled)
        self.labeled_loader = labeled_loader
        self.unlabeled_loader = unlabeled_loader

    def set_thread_id(self, thread_id):
        super().set_thread_id(thread_id)
        self.labeled_loader.set_thread_id(thread_id)
        if self.unlabeled_loader is not None:
            self.unlabeled_loader.set_thread_id(thread_id)

    def generate_train_batch(self) -> dict:
        labeled = self.labeled_loader.generate_train_batch()
        data, keys = labeled['data'], list(labeled['keys'])
        is_labeled = torch.ones(data.shape[0], dtype=torch.bool)
        if self.unlabeled_loader is not None:
            unlabeled = self.unlabeled_loader.generate_train_batch()
            data = torch.cat((data, unlabeled['data']))
            keys += list(unlabeled['keys'])
            is_labeled = torch.cat((is_labeled, torch.zeros(unlabeled['data'].shape[0], dtype=torch.bool)))
        return {'data': data, 'target': labeled['target'], 'is_labeled': is_labeled, 'keys': keys}


def dtc_targets(batch: dict, deep_supervision: bool) -> DTCTargets:
    """The DTCTargets of a LabeledUnlabeledDataLoader batch."""
    *segmentation_targets, sdf = batch['target']
    return DTCTargets(segmentation_targets if deep_supervision else segmentation_targets[0], sdf,
                      batch['is_labeled'])


def split_global_batch_size(global_batch_size: int, world_size: int, rank: int) -> int:
    """This rank's share of a global batch, distributed across DDP ranks the way nnU-Net distributes its labelled
    batch (nnUNetTrainer._set_batch_size_and_oversample): the first ranks get one more when it does not divide."""
    per_rank: List[int] = [global_batch_size // world_size] * world_size
    per_rank = [n + 1 if n * world_size + i < global_batch_size else n for i, n in enumerate(per_rank)]
    return per_rank[rank]
