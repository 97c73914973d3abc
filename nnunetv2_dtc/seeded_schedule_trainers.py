"""Schedule trainers (see schedule_trainers) that also seed Python's, numpy's and torch's random generators, written
as modules for nnUNet_extTrainer.

nnUNetv2_train has no seed option. Seeding in __init__, before nnU-Net builds anything, fixes the network's
initialisation and every draw in the trainer process. nnU-Net's data augmentation workers
(NonDetMultiThreadedAugmenter, seeds=None) draw their own seeds, so two runs with the same seed are close but not
bit-identical unless nnUNet_n_proc_DA=0 runs augmentation in the trainer process. The seed is part of the class name,
so every seed trains into its own nnU-Net results folder.

With final_validation=False the trainer skips nnU-Net's validation after training (perform_actual_validation). On
fold `all` that validation predicts the training cases themselves, which says nothing about a model scored on held-out
cases and costs a prediction of every labelled case; the final checkpoint is written before it either way.
"""

from nnunetv2_dtc.schedule_trainers import (BASE_TRAINERS, check_schedule, schedule_trainer_name,
                                             write_trainer_module)

_TEMPLATE = '''"""Written by nnunetv2_dtc.seeded_schedule_trainers: {base} for {epochs} epochs of {iterations}
iterations, seed {seed}."""
import random

import numpy as np
import torch

from {module} import {base}


class {name}({base}):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        random.seed({seed})
        np.random.seed({seed})
        torch.manual_seed({seed})
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = {epochs}
        self.num_iterations_per_epoch = {iterations}
        self.num_val_iterations_per_epoch = {val_iterations}
{validation}'''

_NO_FINAL_VALIDATION = '''
    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file('Final validation skipped: the benchmark scores held-out test cases instead.')
'''


def seeded_schedule_trainer_name(base: str, epochs: int, iterations_per_epoch: int, seed: int) -> str:
    return f'{schedule_trainer_name(base, epochs, iterations_per_epoch)}_s{seed}'


def write_seeded_schedule_trainer(folder: str, base: str, epochs: int, iterations_per_epoch: int,
                                  val_iterations_per_epoch: int, seed: int, final_validation: bool = True) -> str:
    """Writes `<base>_<E>ep_<N>it_s<seed>` into `folder` (atomically) and returns its class name."""
    check_schedule(base, epochs, iterations_per_epoch, val_iterations_per_epoch)
    if seed < 0:
        raise ValueError(f'seed must be >= 0 (numpy refuses negative seeds), got {seed}')
    module, class_name = BASE_TRAINERS[base]
    name = seeded_schedule_trainer_name(base, epochs, iterations_per_epoch, seed)
    return write_trainer_module(folder, name, _TEMPLATE.format(
        base=class_name, module=module, name=name, epochs=epochs, iterations=iterations_per_epoch,
        val_iterations=val_iterations_per_epoch, seed=seed,
        validation='' if final_validation else _NO_FINAL_VALIDATION))
