"""Trainer variants with any training length (and optionally a seed), written as modules for nnUNet_extTrainer.

nnUNetv2_train takes no epoch, iteration or seed options: nnU-Net changes the schedule with trainer subclasses
(nnUNetTrainer_5epochs, ...). The demo, the benchmark and the tests need arbitrary short schedules, so they write such
subclasses of any trainer class into a folder of their own and add it to nnUNet_extTrainer beside the DTC trainer
folder (trainer_dir.environment_with_trainers).

A seeded variant seeds Python's, numpy's and torch's random generators in __init__, before nnU-Net builds anything,
which fixes the network's initialisation and every draw in the trainer process. nnU-Net's data augmentation workers
(NonDetMultiThreadedAugmenter, seeds=None) draw their own seeds, so two runs with the same seed are close but not
bit-identical unless nnUNet_n_proc_DA=0 runs augmentation in the trainer process. The seed is part of the class name,
so every seed trains into its own nnU-Net results folder.

With final_validation=False the trainer skips nnU-Net's validation after training (perform_actual_validation). On
fold `all` that validation predicts the training cases themselves, which says nothing about a model scored on held-out
cases and costs a prediction of every labelled case; the final checkpoint is written before it either way.
"""
import os
from typing import Optional

from nnunetv2_dtc.utilities.files import write_text_atomic

_TEMPLATE = '''"""Written by nnunetv2_dtc.generated_trainers: {base}, {epochs} x {iterations} iterations{seed_text}."""
{seed_imports}import torch

from {module} import {base}


class {name}({base}):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
{seeding}        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = {epochs}
        self.num_iterations_per_epoch = {iterations}
        self.num_val_iterations_per_epoch = {val_iterations}
{checkpointing}{validation}'''

_SEED_IMPORTS = 'import random\n\nimport numpy as np\n'
_SEEDING = '''        random.seed({seed})
        np.random.seed({seed})
        torch.manual_seed({seed})
'''
_CHECKPOINT_EVERY = '''        self.save_every = {save_every}
'''
_NO_FINAL_VALIDATION = '''
    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file('Final validation skipped: the benchmark scores held-out test cases instead.')
'''


def schedule_trainer_name(base: str, epochs: int, iterations_per_epoch: int, seed: Optional[int] = None) -> str:
    """`<base>_<E>ep_<N>it`, then `_s<seed>` for a seeded one: no double underscore, nnU-Net splits model folder
    names (trainer__plans__config) at '__' (nnUNetv2_find_best_configuration fails otherwise)."""
    name = f'{base}_{epochs}ep_{iterations_per_epoch}it'
    return name if seed is None else f'{name}_s{seed}'


def check_schedule(base: type, epochs: int, iterations_per_epoch: int, val_iterations_per_epoch: int,
                   seed: Optional[int] = None, save_every: Optional[int] = None) -> None:
    if not isinstance(base, type) or base.__module__ == '__main__':
        raise ValueError(f'{base!r} is not a trainer class importable by module name')
    for option, value in (('epochs', epochs), ('iterations per epoch', iterations_per_epoch),
                          ('validation iterations per epoch', val_iterations_per_epoch),
                          ('save_every (epochs)', 1 if save_every is None else save_every)):
        if value < 1:
            raise ValueError(f'{option} must be >= 1, got {value}')
    if seed is not None and seed < 0:
        raise ValueError(f'seed must be >= 0 (numpy refuses negative seeds), got {seed}')


def write_schedule_trainer(folder: str, base: type, epochs: int, iterations_per_epoch: int,
                           val_iterations_per_epoch: int, seed: Optional[int] = None,
                           final_validation: bool = True, save_every: Optional[int] = None) -> str:
    """Writes the subclass of `base` named schedule_trainer_name(...) as `<name>.py` into `folder` (atomically) and
    returns its class name. save_every: write checkpoint_latest.pth every that many epochs (nnU-Net's save_every;
    None keeps nnU-Net's 50)."""
    check_schedule(base, epochs, iterations_per_epoch, val_iterations_per_epoch, seed, save_every)
    name = schedule_trainer_name(base.__name__, epochs, iterations_per_epoch, seed)
    source = _TEMPLATE.format(
        base=base.__name__, module=base.__module__, name=name, epochs=epochs, iterations=iterations_per_epoch,
        val_iterations=val_iterations_per_epoch, seed_text='' if seed is None else f', seed {seed}',
        seed_imports='' if seed is None else _SEED_IMPORTS,
        seeding='' if seed is None else _SEEDING.format(seed=seed),
        checkpointing='' if save_every is None else _CHECKPOINT_EVERY.format(save_every=save_every),
        validation='' if final_validation else _NO_FINAL_VALIDATION)
    write_text_atomic(os.path.join(folder, name + '.py'), source)
    return name
