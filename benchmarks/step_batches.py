"""Training batches of the shapes and dtypes nnU-Net's loaders produce, for timing train_step without a dataset.

Content does not change the cost of a step (dense convolutions and losses), so images are noise, label maps random
classes and SDF targets uniform in [-1, 1]; deep-supervision targets come from nnU-Net's own downsampling transform.
"""
import torch
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform

SEED = 0


def _labelled_parts(trainer, num_samples: int, generator: torch.Generator):
    patch = list(trainer.configuration_manager.patch_size)
    data = torch.randn((num_samples, trainer.num_input_channels, *patch), generator=generator)
    labels = torch.randint(0, len(trainer.label_manager.all_labels), (num_samples, *patch), generator=generator,
                           dtype=torch.int16)
    scales = trainer._get_deep_supervision_scales()
    if scales is None:
        return data, labels[:, None]
    # the transform works on one sample's channels; samples stand in for channels here
    return data, [s[:, None] for s in DownsampleSegForDSTransform(scales)(segmentation=labels)['segmentation']]


def vanilla_batch(trainer, num_samples: int) -> dict:
    data, target = _labelled_parts(trainer, num_samples, torch.Generator().manual_seed(SEED))
    return {'data': data, 'target': target, 'keys': [f'case{i}' for i in range(num_samples)]}


def dtc_batch(trainer, num_labeled: int, num_unlabeled: int) -> dict:
    generator = torch.Generator().manual_seed(SEED)
    data, target = _labelled_parts(trainer, num_labeled, generator)
    unlabeled = torch.randn((num_unlabeled, *data.shape[1:]), generator=generator)
    sdf = torch.rand((num_labeled, trainer.num_level_set_channels, *data.shape[2:]), generator=generator) * 2 - 1
    is_labeled = torch.tensor([True] * num_labeled + [False] * num_unlabeled)
    target = target if isinstance(target, list) else [target]
    return {'data': torch.cat((data, unlabeled)), 'target': [*target, sdf], 'is_labeled': is_labeled,
            'keys': [f'case{i}' for i in range(num_labeled + num_unlabeled)]}
