"""Temporary nnU-Net folders and initialised trainers (nnU-Net's and DTC's) for the benchmarks."""
import contextlib
import copy
import io
import os
import tempfile
from pathlib import Path
from typing import Iterator

import torch
from batchgenerators.utilities.file_and_folder_operations import join, maybe_mkdir_p

from nnunetv2_dtc.utilities.nnunet_paths import nnunet_folders_under

FOLD = 'all'  # every case trains; the benchmarks never validate
# nnUNetTrainer.initialize infers the dataset class from the file endings in the preprocessed folder, even when no
# batch is ever loaded from it (step, memory): an empty file of nnU-Net's default format stands in for the data
PLACEHOLDER_CASE = 'placeholder.b2nd'


@contextlib.contextmanager
def temporary_nnunet_folders() -> Iterator[Path]:
    """nnUNet_raw / nnUNet_preprocessed / nnUNet_results in a temporary folder, set in os.environ (nnunetv2.paths
    reads them at each use; worker processes inherit them) and restored afterwards."""
    with tempfile.TemporaryDirectory(prefix='dtc_speed_') as root:
        folders = nnunet_folders_under(root)
        saved = {name: os.environ.get(name) for name in folders}
        os.environ.update(folders)
        try:
            yield Path(root)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def ensure_preprocessed_folder(plans: dict, configuration: str) -> None:
    folder = join(os.environ['nnUNet_preprocessed'], plans['dataset_name'],
                  plans['configurations'][configuration]['data_identifier'])
    if not os.path.isdir(folder):
        maybe_mkdir_p(folder)
        Path(folder, PLACEHOLDER_CASE).touch()


def initialized_trainer(trainer_class, plans: dict, configuration: str, dataset_json: dict, device: torch.device):
    """trainer_class(plans, ...) after initialize(): network, optimizer and loss exactly as nnUNetv2_train builds
    them (torch.compile follows nnUNet_compile as in nnU-Net). Its console output is swallowed."""
    ensure_preprocessed_folder(plans, configuration)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = trainer_class({**copy.deepcopy(plans), 'continue_training': False}, configuration, FOLD,
                                copy.deepcopy(dataset_json), device)
        trainer.initialize()
    trainer.network.train()
    return trainer
