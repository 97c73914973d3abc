"""nnUNetTrainerDTC with shorter schedules, named like nnU-Net's nnUNetTrainer_Xepochs variants."""
import torch

from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_FixedEpochs(nnUNetTrainerDTC):
    """nnUNetTrainerDTC for `epochs` epochs; the variants below set it (lambda(t) ramps up over the shorter run)."""
    epochs: int = 1000  # nnUNetTrainer's default

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.epochs


class nnUNetTrainerDTC_1epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 1


class nnUNetTrainerDTC_5epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 5


class nnUNetTrainerDTC_10epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 10


class nnUNetTrainerDTC_50epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 50


class nnUNetTrainerDTC_100epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 100


class nnUNetTrainerDTC_250epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 250


class nnUNetTrainerDTC_500epochs(nnUNetTrainerDTC_FixedEpochs):
    epochs = 500
