"""Issue #14, hypothesis 12 (from benchmarks/task_view_quality.py on three view variants, docs/variants.md): on
unlabelled images DTC's level-set view segments as well as the segmentation and no better, whichever way the level
set is trained, so the consistency can teach the segmentation little (plain DTC) or its own errors (pulled harder).
A teacher has to be better than its student somewhere. These trainers take the level-set view from an exponential
moving average of the network (Mean Teacher, Tarvainen & Valpola 2017; ema_teacher.py), a temporal ensemble that
is usually a little better than the network it averages, and let the consistency train the segmentation only, as
nnUNetTrainerDTC_LevelSetTeacher does with the network's own level set. The level set itself still learns from its
SDF target; the network nnU-Net predicts with is the student, as for every other trainer.

The teacher costs one more forward pass of each batch (no backward). It starts as a copy of the network in
on_train_start. nnU-Net's checkpoint dict is built inside save_checkpoint with no hook for more keys, so the teacher
is saved beside checkpoint_latest.pth / checkpoint_best.pth (`checkpoint_latest_ema_teacher.pth`, ...) and restored
by `nnUNetv2_train --c`: a resumed run goes on averaging where it stopped instead of restarting the teacher from the
student. checkpoint_final.pth gets none (prediction uses the student), and the latest one's is removed with
checkpoint_latest.pth at the end of training, as nnU-Net does."""
import os
from typing import Optional, Union

import torch
from batchgenerators.utilities.file_and_folder_operations import isfile, join
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast

from nnunetv2_dtc.ema_teacher import DEFAULT_EMA_DECAY, EMATeacher
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.utilities.files import torch_save_atomic

TEACHER_CHECKPOINT_SUFFIX = '_ema_teacher.pth'
CHECKPOINTS_WITHOUT_TEACHER = ('checkpoint_final.pth',)  # only the student predicts


def teacher_checkpoint_path(checkpoint_path: str) -> str:
    """Where the teacher of `checkpoint_path` lies: checkpoint_latest.pth -> checkpoint_latest_ema_teacher.pth."""
    return os.path.splitext(checkpoint_path)[0] + TEACHER_CHECKPOINT_SUFFIX


class nnUNetTrainerDTC_EMATeacher(nnUNetTrainerDTC):
    """nnUNetTrainerDTC whose consistency compares the segmentation with the level-set view of its EMA teacher."""
    ema_decay: float = DEFAULT_EMA_DECAY

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.teacher = None
        self.loaded_teacher_state: Optional[dict] = None

    def on_train_start(self):
        super().on_train_start()
        self.start_teacher()

    def start_teacher(self) -> None:
        self.teacher = EMATeacher(self._unwrapped_network(), self.ema_decay)
        if self.loaded_teacher_state is None:
            self.print_to_log_file(f'EMA teacher (decay {self.ema_decay}) started from the network at epoch '
                                   f'{self.current_epoch}')
            return
        self.teacher.load_state_dict(self.loaded_teacher_state)
        self.print_to_log_file(f'EMA teacher (decay {self.ema_decay}) restored from the checkpoint at epoch '
                               f'{self.current_epoch}, after {self.teacher.num_updates} updates')

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.teacher is None or self.local_rank != 0 or self.disable_checkpointing or \
                os.path.basename(filename) in CHECKPOINTS_WITHOUT_TEACHER:
            return
        torch_save_atomic(self.teacher.state_dict(), teacher_checkpoint_path(filename))

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        if not isinstance(filename_or_checkpoint, str):
            return
        path = teacher_checkpoint_path(filename_or_checkpoint)
        self.loaded_teacher_state = torch.load(path, map_location=self.device) if isfile(path) else None
        if self.teacher is not None and self.loaded_teacher_state is not None:
            self.teacher.load_state_dict(self.loaded_teacher_state)

    def on_train_end(self):
        super().on_train_end()
        latest_teacher = teacher_checkpoint_path(join(self.output_folder, 'checkpoint_latest.pth'))
        if self.local_rank == 0 and isfile(latest_teacher):
            os.remove(latest_teacher)

    def train_step(self, batch: dict) -> dict:
        data = batch['data'].to(self.device, non_blocking=True)
        teacher_input = self.teacher_input(data, batch['is_labeled'])
        if teacher_input.shape[0] > 0:
            # nnUNetTrainer.train_step's autocast rule: only on CUDA
            with autocast(self.device.type, enabled=True) if self.device.type == 'cuda' else dummy_context():
                self.loss.teacher_auxiliary = self.teacher_view(teacher_input)
        result = super().train_step({**batch, 'data': data})
        self.teacher.update(self._unwrapped_network())
        return result

    def teacher_input(self, data: torch.Tensor, is_labeled: torch.Tensor) -> torch.Tensor:
        """The samples the teacher gives the consistency's view of: all of them."""
        return data

    def teacher_view(self, teacher_input: torch.Tensor) -> torch.Tensor:
        """The teacher's raw auxiliary channels of `teacher_input`, voxel for voxel."""
        return self.teacher.auxiliary_output(teacher_input, self.label_manager.num_segmentation_heads)


class nnUNetTrainerDTC_EMATeacher_LabeledOnly(nnUNetTrainerDTC_EMATeacher):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
