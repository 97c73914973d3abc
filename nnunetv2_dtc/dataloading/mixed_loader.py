"""Batches of labelled patches (nnU-Net's own loader) followed by unlabelled patches, built in the worker processes."""
from typing import List, Optional

from batchgenerators.dataloading.data_loader import SlimDataLoaderBase
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

from nnunetv2_dtc.dataloading.batch import mixed_batch
from nnunetv2_dtc.dataloading.unlabeled_loader import UnlabeledPatchLoader


class LabeledUnlabeledDataLoader(SlimDataLoaderBase):
    """Wraps nnU-Net's labelled loader (its sampling, foreground oversampling and augmentation, plus the SDF
    target that `with_sdf_targets` appends to the segmentation list) and appends a batch of unlabelled patches
    (UnlabeledPatchLoader: random crops, the same augmentation). The batch layout is batch.py's."""

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
        unlabeled = None if self.unlabeled_loader is None else self.unlabeled_loader.generate_train_batch()
        return mixed_batch(labeled, unlabeled)


def split_global_batch_size(global_batch_size: int, world_size: int, rank: int) -> int:
    """This rank's share of a global batch, distributed across DDP ranks the way nnU-Net distributes its labelled
    batch (nnUNetTrainer._set_batch_size_and_oversample): the first ranks get one more when it does not divide."""
    per_rank: List[int] = [global_batch_size // world_size] * world_size
    per_rank = [n + 1 if n * world_size + i < global_batch_size else n for i, n in enumerate(per_rank)]
    return per_rank[rank]
