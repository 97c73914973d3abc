"""The DTC batch contract, packed and unpacked in this one module (the loaders and the loss both import it; the
loaders never import the loss).

nnU-Net's data loader keeps only `image` and `segmentation` of a transform's output and batches list entries one by
one, and its augmenter pins plain tensors and lists for the GPU copy. So a DTC batch is a plain dict:

    'data'        labelled patches first, then unlabelled ones
    'target'      [nnU-Net's segmentation target(s) of the labelled patches ..., their SDF targets]: the SDF is the
                  last entry of the segmentation list, appended by AppendSdfToSegmentationTransform
    'is_labeled'  bool per sample
    'keys'        case ids

`dtc_targets` turns it into the loss's DTCTargets, in the trainer process.
"""
from dataclasses import dataclass
from typing import List, Optional, Union

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform

SDF_KEY = 'sdf'  # where AuxiliaryTargetTransform leaves the auxiliary target (the SDF for DTC) until it is appended

SegmentationTarget = Union[torch.Tensor, List[torch.Tensor]]


@dataclass
class DTCTargets:
    """What a DTC training batch carries as `target`: nnU-Net's segmentation target(s) of the labelled samples,
    their auxiliary targets (`sdf`: the SDF for DTC's level set, the boundary band for BoundaryTask), and which
    samples of the batch are labelled (labelled ones first). `to` has the tensor signature so that
    nnUNetTrainer.train_step moves it to the device unchanged; `is_labeled` stays on the CPU."""
    segmentation: SegmentationTarget
    sdf: torch.Tensor
    is_labeled: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> 'DTCTargets':
        segmentation = [s.to(device, non_blocking=non_blocking) for s in self.segmentation] \
            if isinstance(self.segmentation, list) else self.segmentation.to(device, non_blocking=non_blocking)
        return DTCTargets(segmentation, self.sdf.to(device, non_blocking=non_blocking), self.is_labeled)

    @property
    def num_labeled(self) -> int:
        num_labeled = int(self.is_labeled.sum())
        if not bool(self.is_labeled[:num_labeled].all()):
            raise ValueError('DTC batches must hold their labelled samples first')
        return num_labeled


class AppendSdfToSegmentationTransform(BasicTransform):
    """Moves `data_dict['sdf']` to the end of the segmentation list, which is how the SDF target passes nnU-Net's
    data loader. Runs last, after deep-supervision downsampling."""

    def apply(self, data_dict, **params):
        segmentation = data_dict['segmentation']
        targets = list(segmentation) if isinstance(segmentation, list) else [segmentation]
        data_dict['segmentation'] = targets + [data_dict.pop(SDF_KEY)]
        return data_dict


def mixed_batch(labeled: dict, unlabeled: Optional[dict]) -> dict:
    """The DTC batch of a batch of nnUNetDataLoader (with the SDF appended to its targets) and one of
    UnlabeledPatchLoader ({'data', 'keys'}, or None)."""
    data, keys = labeled['data'], list(labeled['keys'])
    is_labeled = torch.ones(data.shape[0], dtype=torch.bool)
    if unlabeled is not None:
        data = torch.cat((data, unlabeled['data']))
        keys += list(unlabeled['keys'])
        is_labeled = torch.cat((is_labeled, torch.zeros(unlabeled['data'].shape[0], dtype=torch.bool)))
    return {'data': data, 'target': labeled['target'], 'is_labeled': is_labeled, 'keys': keys}


def dtc_targets(batch: dict, deep_supervision: bool) -> DTCTargets:
    """The DTCTargets of a DTC batch."""
    *segmentation_targets, sdf = batch['target']
    return DTCTargets(segmentation_targets if deep_supervision else segmentation_targets[0], sdf,
                      batch['is_labeled'])
