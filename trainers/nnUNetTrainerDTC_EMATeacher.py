"""Issue #14, hypothesis 12 (from benchmarks/task_view_quality.py on three view variants, docs/variants.md): on
unlabelled images DTC's level-set view segments as well as the segmentation and no better, whichever way the level
set is trained, so the consistency can teach the segmentation little (plain DTC) or its own errors (pulled harder).
A teacher has to be better than its student somewhere. These trainers take the level-set view from an exponential
moving average of the network (Mean Teacher, Tarvainen & Valpola 2017; ema_teacher.py), a temporal ensemble that
is usually a little better than the network it averages, and let the consistency train the segmentation only, as
nnUNetTrainerDTC_LevelSetTeacher does with the network's own level set. The level set itself still learns from its
SDF target; the network nnU-Net predicts with is the student, as for every other trainer.

The teacher costs one more forward pass of each batch (no backward) and is not written to the checkpoints: it
starts as a copy of the network in on_train_start, after `--c` of the loaded one, and with decay 0.99 forgets its
start within a few hundred steps."""
import torch
from nnunetv2.utilities.helpers import dummy_context
from torch import autocast

from nnunetv2_dtc.ema_teacher import DEFAULT_EMA_DECAY, EMATeacher
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_EMATeacher(nnUNetTrainerDTC):
    """nnUNetTrainerDTC whose consistency compares the segmentation with the level-set view of its EMA teacher."""
    ema_decay: float = DEFAULT_EMA_DECAY

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.teacher = None

    def on_train_start(self):
        super().on_train_start()
        self.start_teacher()

    def start_teacher(self) -> None:
        self.teacher = EMATeacher(self._unwrapped_network(), self.ema_decay)
        self.print_to_log_file(f'EMA teacher (decay {self.ema_decay}) started from the network at epoch '
                               f'{self.current_epoch}')

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
