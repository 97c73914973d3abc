"""nnUNetv2_dtc_demo: the whole DTC workflow on a small synthetic semi-supervised dataset.

It runs the same commands a user runs (nnUNetv2_plan_and_preprocess, nnUNetv2_dtc_preprocess_unlabeled,
nnUNetv2_train, nnUNetv2_predict, nnUNetv2_evaluate_folder) in subprocesses, with nnU-Net's folders inside --out,
and prints the Dice on held-out test cases.
"""
import argparse
import os
import re
import shutil
import time
from typing import Callable, List, Optional

from batchgenerators.utilities.file_and_folder_operations import join, load_json
from nnunetv2.utilities.file_path_utilities import convert_trainer_plans_config_to_identifier

from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.generated_trainers import write_schedule_trainer
from nnunetv2_dtc.trainer_dir import environment_with_trainers
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.utilities.console_scripts import log_tail, run_logged
from nnunetv2_dtc.utilities.files import read_json_or_none, write_json_atomic
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER, nnunet_folders_under
from nnunetv2_dtc.utilities.training_progress import epoch_progress

DEMO_DATASET_ID = 990
DEMO_CONFIGURATION = '3d_fullres'
# Sized to finish in a few minutes on a 2-core CPU and still learn the synthetic blobs.
DEFAULT_EPOCHS = 3
DEFAULT_ITERATIONS_PER_EPOCH = 25
DEFAULT_VAL_ITERATIONS_PER_EPOCH = 2
DEFAULT_NUM_LABELED = 4
DEFAULT_NUM_UNLABELED = 12
DEFAULT_NUM_TEST = 4


# lines of nnUNetv2_plan_and_preprocess that name its phases (plan_and_preprocess_entrypoints.py / _api.py)
PLANNING_PHASE = re.compile(r'^(Fingerprint extraction|Experiment planning|Preprocessing|Configuration: )')
DEMO_RECORD = 'nnunet_dtc_demo.json'  # settings and, once finished, the result: what a second run reuses
NUM_STEPS = 5


class DemoFolderError(SystemExit):
    """--out cannot be used as asked; the message says why and what to pass instead."""


def _run(number: int, step: str, command: List[str], environment: dict, log_folder: str,
         progress: Optional[Callable[[str], Optional[str]]] = None) -> None:
    log_file = join(log_folder, step.replace(' ', '_') + '.log')
    print(f'[demo {number}/{NUM_STEPS}] {step}: {" ".join(command)}  (log: {log_file})', flush=True)
    start = time.time()

    def show(line: str) -> None:
        shown = progress(line) if progress is not None else None
        if shown:
            print(f'    {shown}', flush=True)

    finished = run_logged(command, environment, log_file, show)
    if finished.return_code != 0:
        raise SystemExit(f'[demo] {step} failed (exit {finished.return_code}). Last lines of {log_file}:\n'
                         f'{log_tail(log_file)}')
    print(f'[demo {number}/{NUM_STEPS}] {step} done in {time.time() - start:.0f} s', flush=True)


def _planning_phase(line: str) -> Optional[str]:
    return line.strip() if PLANNING_PHASE.match(line) else None


def prepare_out_folder(out: str, settings: dict, overwrite: bool) -> Optional[dict]:
    """The finished demo's record when `out` holds one with these settings (nothing to do), else None after making
    `out` ready: absent or empty, or emptied with `overwrite` when it holds a demo (its record names it). A folder
    that is not the demo's is never touched."""
    if not (os.path.isdir(out) and os.listdir(out)):
        return None
    record = read_json_or_none(join(out, DEMO_RECORD))
    if record is None:
        raise DemoFolderError(f'[demo] {out} is not empty and holds no demo ({DEMO_RECORD} is missing). Choose '
                              f'another --out; --overwrite only replaces an earlier demo.')
    if not overwrite:
        if record.get('settings') == settings and 'dice' in record:
            return record
        reason = 'an unfinished demo' if record.get('settings') == settings else 'a demo with other settings'
        raise DemoFolderError(f'[demo] {out} holds {reason}. Add --overwrite to run it again there, or choose '
                              f'another --out.')
    for entry in os.listdir(out):
        path = join(out, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return None


def run_demo(out: str, device: str, epochs: int, iterations_per_epoch: int, num_labeled: int,
             num_unlabeled: int, num_test: int, num_processes: int, overwrite: bool = False) -> float:
    out = os.path.abspath(out)
    settings = {'epochs': epochs, 'iterations_per_epoch': iterations_per_epoch, 'num_labeled': num_labeled,
                'num_unlabeled': num_unlabeled, 'num_test': num_test, 'device': device}
    finished = prepare_out_folder(out, settings, overwrite)
    if finished is not None:
        print(f'[demo] {out} already holds this demo, finished: mean foreground Dice on {num_test} held-out test '
              f'cases: {finished["dice"]:.4f} (model: {finished["model_folder"]}). Add --overwrite to run it again.')
        return finished['dice']
    folders = nnunet_folders_under(out)
    log = join(out, 'logs')
    os.makedirs(log, exist_ok=True)
    write_json_atomic(join(out, DEMO_RECORD), {'settings': settings})
    trainer = write_schedule_trainer(join(out, 'trainers'), nnUNetTrainerDTC, epochs, iterations_per_epoch,
                                     DEFAULT_VAL_ITERATIONS_PER_EPOCH)
    environment = environment_with_trainers({**os.environ, **folders}, join(out, 'trainers'))
    environment.setdefault('nnUNet_n_proc_DA', str(num_processes))
    environment.setdefault('nnUNet_def_n_proc', str(num_processes))
    environment.setdefault('nnUNet_compile', 'false')

    raw = make_synthetic_dataset(folders['nnUNet_raw'], DEMO_DATASET_ID, num_labeled=num_labeled,
                                 num_unlabeled=num_unlabeled, num_test=num_test)
    print(f'[demo] synthetic dataset: {num_labeled} labelled, {num_unlabeled} unlabelled, {num_test} test cases '
          f'in {raw}', flush=True)
    d, c = str(DEMO_DATASET_ID), DEMO_CONFIGURATION
    _run(1, 'plan and preprocess', ['nnUNetv2_plan_and_preprocess', '-d', d, '-c', c, '-np', str(num_processes),
                                    '--verify_dataset_integrity'], environment, log, _planning_phase)
    _run(2, 'preprocess unlabelled', ['nnUNetv2_dtc_preprocess_unlabeled', '-d', d, '-c', c,
                                      '-np', str(num_processes)], environment, log)
    print(f'[demo] training {trainer}: nnUNetTrainerDTC on a {epochs} x {iterations_per_epoch}-iteration schedule, '
          f'generated in {join(out, "trainers")}', flush=True)
    _run(3, 'train', ['nnUNetv2_train', d, c, 'all', '-tr', trainer, '-device', device], environment, log,
         epoch_progress(epochs))
    predictions = join(out, 'predictions')
    _run(4, 'predict', ['nnUNetv2_predict', '-i', join(raw, 'imagesTs'), '-o', predictions, '-d', d, '-c', c,
                        '-f', 'all', '-tr', trainer, '-device', device, '-npp', '1', '-nps', '1'], environment, log)
    model_folder = join(folders['nnUNet_results'], os.path.basename(raw),
                        convert_trainer_plans_config_to_identifier(trainer, DEFAULT_PLANS_IDENTIFIER, c))
    summary = join(predictions, 'summary.json')
    _run(5, 'evaluate', ['nnUNetv2_evaluate_folder', join(raw, 'labelsTs'), predictions,
                         '-djfile', join(model_folder, 'dataset.json'), '-pfile', join(model_folder, 'plans.json'),
                         '-o', summary, '-np', str(num_processes)], environment, log)
    dice = load_json(summary)['foreground_mean']['Dice']
    write_json_atomic(join(out, DEMO_RECORD), {'settings': settings, 'dice': dice, 'model_folder': model_folder})
    print(f'[demo] training log and progress plots: {join(model_folder, "fold_all")}')
    print(f'[demo] the model\'s trainer lives in {join(out, "trainers")}: to predict with it later, add that folder '
          f'to nnUNet_extTrainer, or export it for stock nnU-Net with nnUNetv2_dtc_export_vanilla')
    print(f'[demo] mean foreground Dice on {num_test} held-out test cases: {dice:.4f}', flush=True)
    return dice


def demo_entry() -> None:
    parser = argparse.ArgumentParser(
        prog='nnUNetv2_dtc_demo',
        description='Makes a small synthetic semi-supervised dataset and runs the whole DTC workflow on it with '
                    'nnU-Net\'s own commands (plan/preprocess, unlabelled preprocessing, a short nnUNetTrainerDTC '
                    'training, prediction, evaluation), then prints the Dice on held-out test cases.')
    parser.add_argument('--out', default='nnunet_dtc_demo',
                        help='Folder for everything the demo writes: absent, empty, or an earlier demo (a finished '
                             'one with the same options is reused, its Dice printed again). Default: '
                             './nnunet_dtc_demo')
    parser.add_argument('--overwrite', action='store_true',
                        help='Run again in an --out that holds an earlier demo (its contents are replaced). A folder '
                             'that is not a demo\'s is never touched.')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu', help='Default: cpu')
    parser.add_argument('--epochs', type=int, default=DEFAULT_EPOCHS, help=f'Default: {DEFAULT_EPOCHS}')
    parser.add_argument('--iterations_per_epoch', type=int, default=DEFAULT_ITERATIONS_PER_EPOCH,
                        help=f'Default: {DEFAULT_ITERATIONS_PER_EPOCH}')
    parser.add_argument('--num_labeled', type=int, default=DEFAULT_NUM_LABELED, help=f'Default: {DEFAULT_NUM_LABELED}')
    parser.add_argument('--num_unlabeled', type=int, default=DEFAULT_NUM_UNLABELED,
                        help=f'Default: {DEFAULT_NUM_UNLABELED}')
    parser.add_argument('--num_test', type=int, default=DEFAULT_NUM_TEST, help=f'Default: {DEFAULT_NUM_TEST}')
    parser.add_argument('-np', type=int, default=2, help='Processes for preprocessing and data augmentation. '
                                                         'Default: 2')
    args = parser.parse_args()
    run_demo(args.out, args.device, args.epochs, args.iterations_per_epoch, args.num_labeled, args.num_unlabeled,
             args.num_test, args.np, args.overwrite)
