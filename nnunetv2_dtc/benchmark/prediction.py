"""Predictions of a trained run with nnU-Net's own predictor (nnUNetv2_predict, fold `all`, the final checkpoint): the
test cases to score it, and the unlabelled images when the run is a pseudo-label teacher. Each folder is written to a
staging folder and renamed when complete, and reused while the checkpoint (size and modification time) and the input
cases are the ones recorded."""
import os
import shutil
from typing import List

from batchgenerators.utilities.file_and_folder_operations import isfile, join

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.data import BenchmarkDataset
from nnunetv2_dtc.benchmark.settings import CHECKPOINT, FOLD, BenchmarkSettings
from nnunetv2_dtc.benchmark.training import BenchmarkRun
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME
from nnunetv2_dtc.utilities.files import PARTIAL_SUFFIX, read_json_or_none, write_json_atomic

PREDICTION_RECORD_FILE = 'dtc_benchmark_prediction.json'


def prediction_source(run: BenchmarkRun, images_folder: str, cases: List[str]) -> dict:
    """What the predictions depend on: the checkpoint file as it is now, and the input cases."""
    status = os.stat(run.checkpoint)
    return {'checkpoint': run.checkpoint, 'checkpoint_size': status.st_size,
            'checkpoint_mtime_ns': status.st_mtime_ns, 'test_images': images_folder, 'test_cases': cases}


def predict(run: BenchmarkRun, settings: BenchmarkSettings, dataset: BenchmarkDataset, configuration: str,
            predictions_root: str, steps: BenchmarkSteps) -> dict:
    """Predicts (or reuses) the test cases; returns the record {'folder', 'source', 'command'}."""
    steps.start(f'predict the {len(dataset.test_cases)} test case(s) with {run.label}')
    return predict_folder(run, settings, configuration, dataset.test_images, dataset.test_cases,
                          dataset.file_ending, join(predictions_root, run.key), f'predict {run.key}', steps)


def predict_unlabeled(run: BenchmarkRun, settings: BenchmarkSettings, dataset: BenchmarkDataset,
                      unlabeled_cases: List[str], configuration: str, pseudo_labels_root: str,
                      steps: BenchmarkSteps) -> dict:
    """The run's predictions of the dataset's unlabelled images (the pseudo-labels it teaches with), made or
    reused; returns the record {'folder', 'source', 'command'}."""
    steps.start(f'pseudo-labels: predict the {len(unlabeled_cases)} unlabelled image(s) with {run.label}')
    return predict_folder(run, settings, configuration, join(dataset.raw_folder, UNLABELED_IMAGES_FOLDER_NAME),
                          unlabeled_cases, dataset.file_ending, join(pseudo_labels_root, run.key),
                          f'pseudo-labels {run.key}', steps)


def predict_folder(run: BenchmarkRun, settings: BenchmarkSettings, configuration: str, images_folder: str,
                   cases: List[str], file_ending: str, folder: str, step: str, steps: BenchmarkSteps) -> dict:
    """Predicts (or reuses) `cases` of images_folder into folder; step names the command and its log."""
    source = prediction_source(run, images_folder, cases)
    record = read_json_or_none(join(folder, PREDICTION_RECORD_FILE))
    if record is not None and record['source'] == source and \
            all(isfile(join(folder, case + file_ending)) for case in cases):
        steps.note(f'reused: {folder}')
        steps.record_reused(step, record['command'])
        return record
    staging = folder + PARTIAL_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    # one process: nnU-Net's sequential mode (-npp 0 -nps 0) predicts in the command's own process, no worker pools
    processes = str(settings.num_processes if settings.num_processes > 1 else 0)
    command = ['nnUNetv2_predict', '-i', images_folder, '-o', staging, '-d', str(run.dataset_id),
               '-c', configuration, '-p', settings.plans_identifier, '-tr', run.trainer, '-f', FOLD,
               '-chk', CHECKPOINT, '-device', settings.device, '-npp', processes, '-nps', processes]
    executed = steps.run(step, command)
    record = {'folder': folder, 'source': source, 'command': executed}
    write_json_atomic(join(staging, PREDICTION_RECORD_FILE), record)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return record
