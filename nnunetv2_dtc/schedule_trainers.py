"""Trainer variants with any training length, written as modules for nnUNet_extTrainer.

nnUNetv2_train takes no epoch or iteration options: nnU-Net changes the schedule with trainer subclasses
(nnUNetTrainer_5epochs, ...). The demo, the benchmark and the tests need arbitrary short schedules, so they write
such subclasses into a folder of their own and add it to nnUNet_extTrainer beside the DTC trainer folder.
"""
import os
from typing import Dict, Tuple

from nnunetv2_dtc.trainer_dir import EXT_TRAINER_VARIABLE, trainer_dir

# trainer name -> (module to import it from, class name)
BASE_TRAINERS: Dict[str, Tuple[str, str]] = {
    'nnUNetTrainer': ('nnunetv2.training.nnUNetTrainer.nnUNetTrainer', 'nnUNetTrainer'),
    'nnUNetTrainerDTC': ('nnunetv2_dtc.trainers.nnUNetTrainerDTC', 'nnUNetTrainerDTC'),
    'nnUNetTrainerDTC_LabeledOnly': ('nnunetv2_dtc.trainers.nnUNetTrainerDTC_LabeledOnly',
                                     'nnUNetTrainerDTC_LabeledOnly'),
}

_TEMPLATE = '''"""Written by nnunetv2_dtc.schedule_trainers: {base} for {epochs} epochs of {iterations} iterations."""
import torch

from {module} import {base}


class {name}({base}):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = {epochs}
        self.num_iterations_per_epoch = {iterations}
        self.num_val_iterations_per_epoch = {val_iterations}
'''


def schedule_trainer_name(base: str, epochs: int, iterations_per_epoch: int) -> str:
    """`<base>_<E>ep_<N>it`: no double underscore, nnU-Net splits model folder names (trainer__plans__config) at
    '__' (nnUNetv2_find_best_configuration fails otherwise)."""
    return f'{base}_{epochs}ep_{iterations_per_epoch}it'


def check_schedule(base: str, epochs: int, iterations_per_epoch: int, val_iterations_per_epoch: int) -> None:
    if base not in BASE_TRAINERS:
        raise ValueError(f'Unknown trainer {base!r}; choose from {sorted(BASE_TRAINERS)}')
    for option, value in (('epochs', epochs), ('iterations per epoch', iterations_per_epoch),
                          ('validation iterations per epoch', val_iterations_per_epoch)):
        if value < 1:
            raise ValueError(f'{option} must be >= 1, got {value}')


def write_trainer_module(folder: str, name: str, source: str) -> str:
    """Writes `<name>.py` into `folder` atomically and returns name."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + '.py')
    with open(path + '.tmp', 'w') as f:
        f.write(source)
    os.replace(path + '.tmp', path)
    return name


def write_schedule_trainer(folder: str, base: str, epochs: int, iterations_per_epoch: int,
                           val_iterations_per_epoch: int) -> str:
    """Writes `<base>_<E>ep_<N>it` into `folder` (atomically) and returns its class name."""
    check_schedule(base, epochs, iterations_per_epoch, val_iterations_per_epoch)
    module, class_name = BASE_TRAINERS[base]
    name = schedule_trainer_name(base, epochs, iterations_per_epoch)
    return write_trainer_module(folder, name, _TEMPLATE.format(
        base=class_name, module=module, name=name, epochs=epochs, iterations=iterations_per_epoch,
        val_iterations=val_iterations_per_epoch))


def ext_trainer_value(*extra_folders: str) -> str:
    """nnUNet_extTrainer value naming the DTC trainers and `extra_folders`."""
    return os.pathsep.join([trainer_dir(), *extra_folders])


def environment_with_trainers(environment: Dict[str, str], *extra_folders: str) -> Dict[str, str]:
    return {**environment, EXT_TRAINER_VARIABLE: ext_trainer_value(*extra_folders)}
