"""Trainers for the tests only (this folder goes into nnUNet_extTrainer in tests): tiny schedules that checkpoint
every epoch (plain DTC and the EMA teacher), and one whose loss turns non-finite at a known epoch."""
import torch

from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_EMATeacher import nnUNetTrainerDTC_EMATeacher

TEST_EPOCHS = 3
TEST_ITERATIONS = 2
NON_FINITE_EPOCH = 1


def use_test_schedule(trainer) -> None:
    trainer.num_epochs = TEST_EPOCHS
    trainer.num_iterations_per_epoch = TEST_ITERATIONS
    trainer.num_val_iterations_per_epoch = 1
    trainer.save_every = 1


class nnUNetTrainerDTC_TestCheckpointEveryEpoch(nnUNetTrainerDTC):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        use_test_schedule(self)


class nnUNetTrainerDTC_EMATeacher_TestCheckpointEveryEpoch(nnUNetTrainerDTC_EMATeacher):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        use_test_schedule(self)


class nnUNetTrainerDTC_TestNonFiniteLoss(nnUNetTrainerDTC_TestCheckpointEveryEpoch):
    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        if self.current_epoch == NON_FINITE_EPOCH:
            self.loss.task.sharpness = float('nan')
