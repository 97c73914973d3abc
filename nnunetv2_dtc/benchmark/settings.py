"""What one benchmark run is asked to do: the options of nnUNetv2_dtc_benchmark, checked, with their defaults."""
import dataclasses
import importlib
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

from nnunetv2_dtc.benchmark.plans import DEFAULT_FEATURES_DIVISOR
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER, MAX_DATASET_ID


# what a method trains on: the benchmark's dataset, a derived one with pseudo-labels for the unlabelled images, or a
# derived one with their true labels (the upper bound)
SOURCE_DATA, PSEUDO_LABELS, TRUE_LABELS = 'source', 'pseudo_labels', 'true_labels'


class Method(NamedTuple):
    name: str  # in the tables and plots
    trainer: str  # the trainer class (the benchmark's generated trainers subclass it)
    trainer_module: str  # where it lives
    trains_on_unlabeled_images: bool = False  # reads the preprocessed unlabelled images during training (DTC)
    training_data: str = SOURCE_DATA
    teacher: Optional[str] = None  # PSEUDO_LABELS: the method whose predictions of the unlabelled images are used
    ablation: Optional[str] = None  # a DTC method's labelled-only ablation: what the unlabelled images add is the gap

    @property
    def uses_unlabeled_images(self) -> bool:
        return self.trains_on_unlabeled_images or self.training_data != SOURCE_DATA


VANILLA_TRAINER = 'nnUNetTrainer'
DTC_TRAINER = 'nnUNetTrainerDTC'
LABELED_ONLY_TRAINER = 'nnUNetTrainerDTC_LabeledOnly'
_TRAINERS_PACKAGE = 'nnunetv2_dtc.trainers'
BOUNDARY_TRAINER = 'nnUNetTrainerDTCBoundary'
PSEUDO_LABEL = 'pseudo_label'
DTC_PSEUDO_LABEL = 'dtc_pseudo_label'
UPPER_BOUND = 'upper_bound'
_VANILLA_MODULE = 'nnunetv2.training.nnUNetTrainer.nnUNetTrainer'
# issue #14's variants of DTC (trainers/nnUNetTrainerDTC_<variant>.py): (variant, what it changes, its ablation)
DTC_VARIANTS = (
    ('MaskedSDF', 'SDF loss without absent classes', 'nnUNetTrainerDTC_MaskedSDF_LabeledOnly'),
    ('DiceOnly', 'Dice-only supervision', 'nnUNetTrainerDTC_DiceOnly_LabeledOnly'),
    ('ShortRamp', 'lambda ramp over 27 % of the run', 'nnUNetTrainerDTC_ShortRamp_LabeledOnly'),
    ('MoreUnlabeled', '2 unlabelled patches per labelled one', LABELED_ONLY_TRAINER),
    ('LevelSetTeacher', 'consistency gradient into the segmentation only',
     'nnUNetTrainerDTC_LevelSetTeacher_LabeledOnly'),
    ('MaskedSDF_LevelSetTeacher', 'level-set teacher, SDF loss without absent classes',
     'nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_LabeledOnly'),
    ('MaskedSDF_LevelSetTeacher_Lambda30', 'level-set teacher, SDF loss without absent classes, lambda_max 30',
     'nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30_LabeledOnly'),
    ('NegativeBoundarySDF', 'SDF target negative on the inner boundary',
     'nnUNetTrainerDTC_NegativeBoundarySDF_LabeledOnly'),
    ('NegativeBoundarySDF_SoftView', 'SDF target negative on the inner boundary, k = 50 in the level-set view',
     'nnUNetTrainerDTC_NegativeBoundarySDF_SoftView_LabeledOnly'),
    ('BalancedSDF', 'SDF loss with inside and outside weighted equally', 'nnUNetTrainerDTC_BalancedSDF_LabeledOnly'),
    ('EMATeacher', "level-set view from the network's EMA teacher", 'nnUNetTrainerDTC_EMATeacher_LabeledOnly'),
    ('MultiScaleConsistency', 'consistency at every deep-supervision scale',
     'nnUNetTrainerDTC_MultiScaleConsistency_LabeledOnly'),
    ('EMATeacherOnUnlabeled', "level-set view of unlabelled patches from the network's EMA teacher",
     LABELED_ONLY_TRAINER),
    ('NoisyEMATeacher', "level-set view of unlabelled patches from the EMA teacher on a noisy copy",
     LABELED_ONLY_TRAINER),
    ('MirroredEMATeacher', "level-set view of unlabelled patches from the EMA teacher on a mirrored copy",
     LABELED_ONLY_TRAINER),
)


def variant_methods() -> dict:
    """The benchmark methods of DTC_VARIANTS: each variant and, where it has its own, its labelled-only ablation."""
    methods = {}
    for variant, change, ablation in DTC_VARIANTS:
        trainer = f'{DTC_TRAINER}_{variant}'
        module = f'{_TRAINERS_PACKAGE}.{trainer}'
        methods[trainer] = Method(f'DTC, {change}', trainer, module,
                                  trains_on_unlabeled_images=True, ablation=ablation)
        if ablation != LABELED_ONLY_TRAINER:
            methods[ablation] = Method(f'DTC, {change}, labelled only (ablation)', ablation, module)
    return methods


# in the order they are trained for a seed (a teacher before its students) and shown
METHODS = {
    VANILLA_TRAINER: Method('nnU-Net (labelled only)', VANILLA_TRAINER, _VANILLA_MODULE),
    DTC_TRAINER: Method('DTC (labelled + unlabelled)', DTC_TRAINER, f'{_TRAINERS_PACKAGE}.nnUNetTrainerDTC',
                        trains_on_unlabeled_images=True, ablation=LABELED_ONLY_TRAINER),
    LABELED_ONLY_TRAINER: Method('DTC losses, labelled only (ablation)', LABELED_ONLY_TRAINER,
                                 f'{_TRAINERS_PACKAGE}.nnUNetTrainerDTC_LabeledOnly'),
    **variant_methods(),
    # DTC with the boundary task in place of the level set (issue #13)
    BOUNDARY_TRAINER: Method('DTC, boundary task', BOUNDARY_TRAINER, f'{_TRAINERS_PACKAGE}.{BOUNDARY_TRAINER}',
                             trains_on_unlabeled_images=True, ablation=f'{BOUNDARY_TRAINER}_LabeledOnly'),
    f'{BOUNDARY_TRAINER}_LabeledOnly': Method('DTC, boundary task, labelled only (ablation)',
                                              f'{BOUNDARY_TRAINER}_LabeledOnly',
                                              f'{_TRAINERS_PACKAGE}.{BOUNDARY_TRAINER}'),
    # nnU-Net's maintainers' recipe for unlabelled data (MIC-DKFZ/nnUNet #2233, #2338): train on the labelled cases,
    # predict the unlabelled ones, train again on both
    PSEUDO_LABEL: Method('nnU-Net + pseudo-labels (self-training)', VANILLA_TRAINER, _VANILLA_MODULE,
                         training_data=PSEUDO_LABELS, teacher=VANILLA_TRAINER),
    DTC_PSEUDO_LABEL: Method('nnU-Net + DTC\'s pseudo-labels', VANILLA_TRAINER, _VANILLA_MODULE,
                             training_data=PSEUDO_LABELS, teacher=DTC_TRAINER),
    UPPER_BOUND: Method('nnU-Net, all labelled (upper bound)', VANILLA_TRAINER, _VANILLA_MODULE,
                        training_data=TRUE_LABELS),
}
DEFAULT_TRAINERS = (VANILLA_TRAINER, DTC_TRAINER, LABELED_ONLY_TRAINER, PSEUDO_LABEL)
SELECTABLE_METHODS = tuple(m for m in METHODS if m != UPPER_BOUND)  # the upper bound has its own option


def trainer_class(method: str) -> type:
    """The trainer class a method trains (and the benchmark's generated trainers subclass)."""
    return getattr(importlib.import_module(METHODS[method].trainer_module), METHODS[method].trainer)


FOLD = 'all'  # every labelled case trains; the test cases (imagesTs/labelsTs) are the only ones scored
CHECKPOINT = 'checkpoint_final.pth'  # every method is scored with its last weights, never a selected "best"
# nnU-Net's defaults (nnUNetTrainer: 1000 epochs of 250 iterations, 50 validation iterations)
DEFAULT_EPOCHS = 1000
DEFAULT_ITERATIONS_PER_EPOCH = 250
DEFAULT_VAL_ITERATIONS_PER_EPOCH = 50
DEFAULT_SEEDS = (0,)


class BenchmarkSettingsError(ValueError):
    """An option that cannot work; the message names it and says what to pass instead."""


@dataclass(frozen=True)
class BenchmarkSettings:
    dataset: str  # ID or DatasetXXX_Name, as nnU-Net's commands take it
    configuration: str
    plans_identifier: str = DEFAULT_PLANS_IDENTIFIER
    trainers: Tuple[str, ...] = DEFAULT_TRAINERS
    epochs: int = DEFAULT_EPOCHS
    iterations_per_epoch: int = DEFAULT_ITERATIONS_PER_EPOCH
    val_iterations_per_epoch: int = DEFAULT_VAL_ITERATIONS_PER_EPOCH
    seeds: Tuple[int, ...] = DEFAULT_SEEDS
    device: str = 'cpu'
    cpu_mode: bool = False
    features_divisor: int = DEFAULT_FEATURES_DIVISOR
    num_processes: int = 1
    out: str = ''
    upper_bound: bool = False
    derived_dataset_id: Optional[int] = None  # the first ID for derived datasets; None: the first free ones

    def checked(self) -> 'BenchmarkSettings':
        unknown = [t for t in self.trainers if t not in SELECTABLE_METHODS]
        if unknown:
            raise BenchmarkSettingsError(f'--trainers: unknown method(s) {unknown}. Choose from '
                                         f'{list(SELECTABLE_METHODS)} (the upper bound: --upper_bound).')
        missing_teachers = [f'{t} needs {METHODS[t].teacher}' for t in self.trainers
                            if METHODS[t].teacher is not None and METHODS[t].teacher not in self.trainers]
        if missing_teachers:
            raise BenchmarkSettingsError(f'--trainers: {"; ".join(missing_teachers)} (its predictions of the '
                                         f'unlabelled images are the pseudo-labels): add it to --trainers.')
        if self.derived_dataset_id is not None and not 1 <= self.derived_dataset_id <= MAX_DATASET_ID:
            raise BenchmarkSettingsError(f'--derived_dataset_id must be a dataset ID from 1 to {MAX_DATASET_ID}, got '
                                         f'{self.derived_dataset_id}.')
        if len(set(self.trainers)) != len(self.trainers) or len(set(self.seeds)) != len(self.seeds):
            raise BenchmarkSettingsError(f'--trainers {list(self.trainers)} / --seeds {list(self.seeds)}: each may be '
                                         f'given only once.')
        for option, value in (('--epochs', self.epochs), ('--iterations_per_epoch', self.iterations_per_epoch),
                              ('--val_iterations', self.val_iterations_per_epoch), ('-np', self.num_processes),
                              ('--features_divisor', self.features_divisor)):
            if value < 1:
                raise BenchmarkSettingsError(f'{option} must be >= 1, got {value}.')
        if any(seed < 0 for seed in self.seeds):
            raise BenchmarkSettingsError(f'--seeds must be >= 0 (numpy refuses negative seeds), got '
                                         f'{list(self.seeds)}.')
        if self.device not in ('cpu', 'cuda'):
            raise BenchmarkSettingsError(f'--device must be cpu or cuda, got {self.device!r}.')
        return self

    @property
    def methods(self) -> Tuple[str, ...]:
        """The methods to train, in METHODS' order (a teacher before its students), the upper bound last."""
        chosen = set(self.trainers) | ({UPPER_BOUND} if self.upper_bound else set())
        return tuple(m for m in METHODS if m in chosen)

    @property
    def uses_unlabeled_data(self) -> bool:
        """Whether a method trains on the preprocessed unlabelled images (DTC)."""
        return any(METHODS[m].trains_on_unlabeled_images for m in self.methods)

    @property
    def uses_unlabeled_images(self) -> bool:
        """Whether a method needs the unlabelled images in some form (DTC, pseudo-labels, the upper bound)."""
        return any(METHODS[m].uses_unlabeled_images for m in self.methods)

    def as_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
