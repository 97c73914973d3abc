"""Issue #14, hypothesis 7 (from the synthetic size-shift set of `nnUNetv2_dtc_demo --compare`): there the level-set
task alone helps on the test cases of unseen sizes (the labelled-only ablation beats vanilla nnU-Net) while adding
the unlabelled images takes the gain away. DTC's consistency pulls both views towards each other; on unlabelled
images nothing anchors either, so the level set can learn the segmentation's errors. These trainers stop the
consistency gradient at the level-set view: on every patch it only teaches the segmentation to follow the level set
(the level set learns from its SDF target alone), as a mean teacher's targets carry no gradient."""
from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask
from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTeacherTask
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


class nnUNetTrainerDTC_LevelSetTeacher(nnUNetTrainerDTC):
    """nnUNetTrainerDTC whose consistency term trains the segmentation output only."""

    @classmethod
    def build_auxiliary_task(cls) -> AuxiliaryTask:
        return LevelSetTeacherTask(cls.level_set_sharpness, cls.sdf_zero_inner_boundary, cls.sdf_loss_class_balanced)


class nnUNetTrainerDTC_LevelSetTeacher_LabeledOnly(nnUNetTrainerDTC_LevelSetTeacher):
    """Its ablation: the same losses on the labelled patches only."""
    use_unlabeled_data = False
