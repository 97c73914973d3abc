"""DTC with a boundary task in place of the level set (auxiliary_tasks/boundary.py): the head's extra channels learn
each class's boundary band, and the consistency compares it with the soft morphological gradient of the
segmentation probabilities. Same network, loader, schedule and export as nnUNetTrainerDTC."""
from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask
from nnunetv2_dtc.auxiliary_tasks.boundary import DEFAULT_BOUNDARY_WIDTH, BoundaryTask
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_Xepochs import nnUNetTrainerDTC_FixedEpochs


class nnUNetTrainerDTCBoundary(nnUNetTrainerDTC):
    """sdf_loss_weight (beta) weights the boundary loss here; level_set_sharpness is unused."""
    boundary_width: int = DEFAULT_BOUNDARY_WIDTH

    @classmethod
    def build_auxiliary_task(cls) -> AuxiliaryTask:
        return BoundaryTask(cls.boundary_width)

    def initialize(self):
        if isinstance(self.boundary_width, bool) or not isinstance(self.boundary_width, int) or self.boundary_width < 1:
            raise ValueError(f'{type(self).__name__}: boundary_width = {self.boundary_width!r} must be an int >= 1 '
                             f'(voxels on each side of a boundary). Set it as a class attribute in your subclass.')
        super().initialize()


class nnUNetTrainerDTCBoundary_LabeledOnly(nnUNetTrainerDTCBoundary):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False


class nnUNetTrainerDTCBoundary_FixedEpochs(nnUNetTrainerDTCBoundary, nnUNetTrainerDTC_FixedEpochs):
    """nnUNetTrainerDTCBoundary for `epochs` epochs: nnUNetTrainerDTC_FixedEpochs's schedule on the boundary task."""


class nnUNetTrainerDTCBoundary_5epochs(nnUNetTrainerDTCBoundary_FixedEpochs):
    epochs = 5


class nnUNetTrainerDTCBoundary_50epochs(nnUNetTrainerDTCBoundary_FixedEpochs):
    epochs = 50


class nnUNetTrainerDTCBoundary_250epochs(nnUNetTrainerDTCBoundary_FixedEpochs):
    epochs = 250
