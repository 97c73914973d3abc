"""What one benchmark run is asked to do: the options of nnUNetv2_dtc_benchmark, checked, with their defaults."""
import dataclasses
import importlib
from dataclasses import dataclass
from typing import NamedTuple, Tuple

from nnunetv2_dtc.benchmark.plans import DEFAULT_FEATURES_DIVISOR
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER


class Method(NamedTuple):
    name: str  # in the tables and plots
    uses_unlabeled_data: bool
    trainer_module: str  # where the trainer class (named like the method) lives


VANILLA_TRAINER = 'nnUNetTrainer'
DTC_TRAINER = 'nnUNetTrainerDTC'
LABELED_ONLY_TRAINER = 'nnUNetTrainerDTC_LabeledOnly'
DEFAULT_TRAINERS = (VANILLA_TRAINER, DTC_TRAINER, LABELED_ONLY_TRAINER)
METHODS = {
    VANILLA_TRAINER: Method('nnU-Net (labelled only)', False, 'nnunetv2.training.nnUNetTrainer.nnUNetTrainer'),
    DTC_TRAINER: Method('DTC (labelled + unlabelled)', True, 'nnunetv2_dtc.trainers.nnUNetTrainerDTC'),
    LABELED_ONLY_TRAINER: Method('DTC losses, labelled only (ablation)', False,
                                 'nnunetv2_dtc.trainers.nnUNetTrainerDTC_LabeledOnly'),
}


def trainer_class(method: str) -> type:
    """The trainer class a method trains (and the benchmark's generated trainers subclass)."""
    return getattr(importlib.import_module(METHODS[method].trainer_module), method)
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

    def checked(self) -> 'BenchmarkSettings':
        unknown = [t for t in self.trainers if t not in METHODS]
        if unknown:
            raise BenchmarkSettingsError(f'--trainers: unknown trainer(s) {unknown}. Choose from '
                                         f'{list(METHODS)}.')
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
    def uses_unlabeled_data(self) -> bool:
        return any(METHODS[t].uses_unlabeled_data for t in self.trainers)

    def as_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
