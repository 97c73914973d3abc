"""Test-set predictions of a trained run with nnU-Net's own predictor (nnUNetv2_predict, fold `all`, the final
checkpoint), written to a staging folder and renamed when complete. Reused while the checkpoint (size and
modification time) and the test cases are the ones recorded."""
import os
import shutil

from batchgenerators.utilities.file_and_folder_operations import isfile, join

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.data import BenchmarkDataset
from nnunetv2_dtc.benchmark.settings import CHECKPOINT, FOLD, BenchmarkSettings
from nnunetv2_dtc.benchmark.training import BenchmarkRun
from nnunetv2_dtc.utilities.files import PARTIAL_SUFFIX, read_json_or_none, write_json_atomic

PREDICTION_RECORD_FILE = 'dtc_benchmark_prediction.json'


def prediction_source(run: BenchmarkRun, dataset: BenchmarkDataset) -> dict:
    """What the predictions depend on: the checkpoint file as it is now, and the test cases."""
    status = os.stat(run.checkpoint)
    return {'checkpoint': run.checkpoint, 'checkpoint_size': status.st_size,
            'checkpoint_mtime_ns': status.st_mtime_ns, 'test_images': dataset.test_images,
            'test_cases': dataset.test_cases}


def predict(run: BenchmarkRun, settings: BenchmarkSettings, dataset: BenchmarkDataset, configuration: str,
            predictions_root: str, steps: BenchmarkSteps) -> dict:
    """Predicts (or reuses) the test cases; returns the record {'folder', 'source', 'command'}."""
    steps.start(f'predict the {len(dataset.test_cases)} test case(s) with {run.label}')
    folder = join(predictions_root, run.trainer)
    source = prediction_source(run, dataset)
    record = read_json_or_none(join(folder, PREDICTION_RECORD_FILE))
    if record is not None and record['source'] == source and \
            all(isfile(join(folder, case + dataset.file_ending)) for case in dataset.test_cases):
        steps.note(f'reused: {folder}')
        steps.record_reused(f'predict {run.trainer}', record['command'])
        return record
    staging = folder + PARTIAL_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    # one process: nnU-Net's sequential mode (-npp 0 -nps 0) predicts in the command's own process, no worker pools
    processes = str(settings.num_processes if settings.num_processes > 1 else 0)
    command = ['nnUNetv2_predict', '-i', dataset.test_images, '-o', staging, '-d', str(dataset.dataset_id),
               '-c', configuration, '-p', settings.plans_identifier, '-tr', run.trainer, '-f', FOLD,
               '-chk', CHECKPOINT, '-device', settings.device, '-npp', processes, '-nps', processes]
    executed = steps.run(f'predict {run.trainer}', command)
    record = {'folder': folder, 'source': source, 'command': executed}
    write_json_atomic(join(staging, PREDICTION_RECORD_FILE), record)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return record
