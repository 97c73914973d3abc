"""The benchmark's trainings: one generated, seeded schedule trainer per method and seed, trained with nnUNetv2_train
on fold `all`, and reused or resumed on the next invocation.

Before a training starts, the settings that define it are written to `dtc_benchmark_run.json` in its fold folder. A
training is reused when checkpoint_final.pth exists and that record matches the current settings; an unfinished one
with a matching record is resumed with nnUNetv2_train --c (from checkpoint_latest.pth, written every epoch). A folder
whose record differs (or that has none) is never overwritten: the error names the differences and the folder.
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json
from nnunetv2.utilities.file_path_utilities import get_output_folder
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.data import BenchmarkDataset
from nnunetv2_dtc.benchmark.settings import CHECKPOINT, FOLD, METHODS, SOURCE_DATA, BenchmarkSettings, trainer_class
from nnunetv2_dtc.generated_trainers import write_schedule_trainer
from nnunetv2_dtc.utilities.files import json_sha256, read_json_or_none, write_json_atomic
from nnunetv2_dtc.utilities.training_progress import epoch_progress

RUN_RECORD_FILE = 'dtc_benchmark_run.json'
RESUMABLE_CHECKPOINTS = ('checkpoint_latest.pth', 'checkpoint_best.pth')  # what nnUNetv2_train --c loads, in order
# nnU-Net's validation after training predicts fold `all`'s own training cases: skipped, the test cases are scored
FINAL_VALIDATION = False
# nnU-Net writes checkpoint_latest.pth every 50 epochs (save_every), so a benchmark stopped mid-run (a session's end)
# resumed from checkpoint_best.pth, which can be many epochs back, or from nothing when best was never written. One
# save per epoch costs ~0.1 s for ACDC's reduced 2d network (10 MB), against epochs of 50 s and more on a CPU.
CHECKPOINT_EVERY_EPOCHS = 1


class BenchmarkRunConflict(RuntimeError):
    """A results folder that holds another training than the one asked for."""


@dataclass(frozen=True)
class BenchmarkRun:
    method: str  # a key of METHODS, e.g. nnUNetTrainerDTC or pseudo_label
    seed: int
    trainer: str  # the generated class, e.g. nnUNetTrainerDTC_1000ep_250it_s0
    model_folder: str
    dataset_id: int  # the dataset it trains on: the benchmark's, or a derived one (derived_data)
    dataset_name: str

    @property
    def key(self) -> str:
        """Names the run's outputs: its trainer for a method on the benchmark's dataset (the trainer is unique there),
        else method and trainer (pseudo-label and upper-bound runs train nnUNetTrainer too)."""
        return self.trainer if METHODS[self.method].training_data == SOURCE_DATA else f'{self.method}_{self.trainer}'

    @property
    def fold_folder(self) -> str:
        return join(self.model_folder, f'fold_{FOLD}')

    @property
    def checkpoint(self) -> str:
        return join(self.fold_folder, CHECKPOINT)

    @property
    def label(self) -> str:
        return f'{METHODS[self.method].name}, seed {self.seed}'


def plan_runs(settings: BenchmarkSettings, training_datasets: Dict[Tuple[str, int], Tuple[int, str]],
              configuration: str, trainers_folder: str) -> List[BenchmarkRun]:
    """Writes every method's seeded trainer into trainers_folder; runs ordered by seed, then method (a teacher before
    its students). training_datasets: {(method, seed): (dataset id, dataset name)} of what each run trains on."""
    runs = []
    for seed in settings.seeds:
        for method in settings.methods:
            trainer = write_schedule_trainer(trainers_folder, trainer_class(method), settings.epochs,
                                             settings.iterations_per_epoch, settings.val_iterations_per_epoch, seed,
                                             FINAL_VALIDATION, CHECKPOINT_EVERY_EPOCHS)
            dataset_id, dataset_name = training_datasets[(method, seed)]
            runs.append(BenchmarkRun(method, seed, trainer,
                                     get_output_folder(dataset_name, trainer, settings.plans_identifier,
                                                       configuration), dataset_id, dataset_name))
    return runs


def training_settings(run: BenchmarkRun, settings: BenchmarkSettings, dataset: BenchmarkDataset, configuration: str,
                      unlabeled_cases: Optional[List[str]], pseudo_labels: Optional[dict] = None) -> dict:
    """Everything that defines what a training learns; a finished training is reused only when this matches.
    dataset is the one the run trains on; pseudo_labels the source record of its pseudo-labels, if any."""
    plans = load_json(dataset.plans_file(settings.plans_identifier))
    resolved = PlansManager(plans).get_configuration(configuration).configuration
    plans_without_configurations = {k: v for k, v in plans.items() if k != 'configurations'}
    return {
        'trainer': run.trainer, 'base_trainer': run.method, 'seed': run.seed, 'epochs': settings.epochs,
        'iterations_per_epoch': settings.iterations_per_epoch,
        'val_iterations_per_epoch': settings.val_iterations_per_epoch, 'dataset': dataset.name,
        'configuration': configuration, 'plans_identifier': settings.plans_identifier, 'fold': FOLD,
        'plans_fingerprint': json_sha256({'configuration': resolved, 'plans': plans_without_configurations}),
        'labeled_cases': dataset.labeled_cases,
        'unlabeled_cases': unlabeled_cases if METHODS[run.method].trains_on_unlabeled_images else None,
        'pseudo_labels': pseudo_labels,
    }


def train(run: BenchmarkRun, expected: dict, settings: BenchmarkSettings, dataset: BenchmarkDataset,
          configuration: str, steps: BenchmarkSteps) -> dict:
    """Trains, resumes or reuses the run; returns its record ({'training': settings, 'device', 'command'})."""
    steps.start(f'train {run.label} ({run.trainer})')
    record_file = join(run.fold_folder, RUN_RECORD_FILE)
    record = read_json_or_none(record_file)
    _refuse_other_training(run, record, expected)
    if record is not None and isfile(run.checkpoint):
        steps.note(f'reused: {run.checkpoint} is finished with the same settings')
        steps.record_reused(f'train {run.key}', record.get('command'))
        return record
    resume = record is not None
    command = ['nnUNetv2_train', str(run.dataset_id), configuration, FOLD, '-tr', run.trainer,
               '-p', settings.plans_identifier, '-device', settings.device]
    if resume:
        found = [c for c in RESUMABLE_CHECKPOINTS if isfile(join(run.fold_folder, c))]
        steps.note(f'resuming the unfinished training from {found[0]}' if found else
                   'resuming: no checkpoint was written yet, so nnU-Net starts this training anew')
        command.append('--c')
        record['device'] = settings.device
    else:
        record = {'training': expected, 'device': settings.device}
        write_json_atomic(record_file, record)
    record['command'] = steps.run(f'train {run.key}', command, epoch_progress(settings.epochs))
    write_json_atomic(record_file, record)
    return record


def refuse_retraining_on_other_labels(run: BenchmarkRun, pseudo_labels: dict) -> None:
    """Before its derived dataset is made anew: refuses a pseudo-label run whose results folder was trained on other
    pseudo-labels (e.g. its teacher was retrained), so that neither its training data nor its model is replaced."""
    record = read_json_or_none(join(run.fold_folder, RUN_RECORD_FILE))
    if record is not None and record['training'].get('pseudo_labels') not in (None, pseudo_labels):
        raise BenchmarkRunConflict(f'{run.fold_folder} was trained on pseudo-labels of another teacher checkpoint than '
                                   f'{pseudo_labels["checkpoint"]} (see {join(run.fold_folder, RUN_RECORD_FILE)}). '
                                   f'Remove {run.model_folder} to retrain it on the new pseudo-labels.')


def _refuse_other_training(run: BenchmarkRun, record: Optional[dict], expected: dict) -> None:
    if record is None:
        others = [f for f in (os.listdir(run.fold_folder) if os.path.isdir(run.fold_folder) else [])
                  if f.endswith('.pth')]
        if others:
            raise BenchmarkRunConflict(f'{run.fold_folder} holds checkpoints ({", ".join(sorted(others))}) but no '
                                       f'{RUN_RECORD_FILE}, so it was not trained by nnUNetv2_dtc_benchmark. Remove '
                                       f'{run.model_folder} to train it here.')
        return
    differences = sorted(k for k in set(expected) | set(record['training'])
                         if expected.get(k) != record['training'].get(k))
    if differences:
        raise BenchmarkRunConflict(f'{run.fold_folder} was trained with other settings ({", ".join(differences)} '
                                   f'differ; see {join(run.fold_folder, RUN_RECORD_FILE)}). Remove '
                                   f'{run.model_folder} to retrain it, or run the benchmark with the settings it was '
                                   f'trained with.')
