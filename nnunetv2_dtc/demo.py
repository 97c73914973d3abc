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
from typing import Callable, Dict, List, Optional

from batchgenerators.utilities.file_and_folder_operations import join, load_json
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.file_path_utilities import convert_trainer_plans_config_to_identifier

from nnunetv2_dtc.dataset_conversion.synthetic_dataset import EASY_STYLE, SyntheticStyle, make_synthetic_dataset
from nnunetv2_dtc.generated_trainers import write_schedule_trainer
from nnunetv2_dtc.trainer_dir import environment_with_trainers
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_LabeledOnly import nnUNetTrainerDTC_LabeledOnly
from nnunetv2_dtc.utilities.console_scripts import log_tail, run_logged
from nnunetv2_dtc.utilities.files import read_json_or_none, write_json_atomic
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER, nnunet_folders_under
from nnunetv2_dtc.utilities.training_progress import epoch_progress

DEMO_DATASET_ID = 990
DEMO_DATASET_NAME = 'DTCDemo'
DEMO_CONFIGURATION = '3d_fullres'
# Sized to finish in a few minutes on a 2-core CPU and still learn the synthetic blobs.
DEFAULT_EPOCHS = 3
DEFAULT_ITERATIONS_PER_EPOCH = 25
DEFAULT_VAL_ITERATIONS_PER_EPOCH = 2
DEFAULT_NUM_LABELED = 4
DEFAULT_NUM_UNLABELED = 12
DEFAULT_NUM_TEST = 4

# --compare: a set on which few labels are not enough (see COMPARE_DESCRIPTION); measured in README over
# COMPARE_README_SEEDS seeds
COMPARE_DATASET_ID = 991
COMPARE_DATASET_NAME = 'DTCCompare'
# channel 'CT': nnU-Net's per-image z-score would give the large unlabelled and test ellipsoids a normalised intensity
# 0.3-0.5 below the small labelled ones' (1.25-1.28 against 1.59-1.71), a shift no amount of shape learning can fix
COMPARE_STYLE = SyntheticStyle(noise_std=0.6, radius_fraction_range=(0.1, 0.4),
                               labeled_radius_fraction_range=(0.12, 0.16), channel_name='CT')
COMPARE_DESCRIPTION = 'noisy; the labelled ellipsoids are all small, the unlabelled and test ones of every size'
COMPARE_README_SEEDS = 3
# more unlabelled images than the demo's (what DTC is for) and more test cases (a steadier mean); the labelled count
# and the schedule stay the demo's
COMPARE_NUM_UNLABELED = 24
COMPARE_NUM_TEST = 8
COMPARE_DEFAULT_SEED = 0


# lines of nnUNetv2_plan_and_preprocess that name its phases (plan_and_preprocess_entrypoints.py / _api.py)
PLANNING_PHASE = re.compile(r'^(Fingerprint extraction|Experiment planning|Preprocessing|Configuration: )')
DEMO_RECORD = 'nnunet_dtc_demo.json'  # settings and, once finished, the result: what a second run reuses
NUM_STEPS = 5
# --compare also trains, predicts and evaluates these, after nnUNetTrainerDTC: vanilla nnU-Net, and DTC's losses on the
# labelled cases only (its ablation), which separates what the unlabelled images add from what the level-set task adds
COMPARED_TRAINERS = (nnUNetTrainer, nnUNetTrainerDTC_LabeledOnly)
NUM_COMPARE_STEPS = NUM_STEPS + 3 * len(COMPARED_TRAINERS)
COMPARISON_ROWS = {'nnUNetTrainerDTC': 'nnUNetTrainerDTC (labelled + unlabelled)',
                   'nnUNetTrainerDTC_LabeledOnly': 'nnUNetTrainerDTC_LabeledOnly (DTC losses, labelled only)',
                   'nnUNetTrainer': 'nnUNetTrainer (labelled only)'}


class DemoFolderError(SystemExit):
    """--out cannot be used as asked; the message says why and what to pass instead."""


def _run(number: int, step: str, command: List[str], environment: dict, log_folder: str,
         progress: Optional[Callable[[str], Optional[str]]] = None, num_steps: int = NUM_STEPS) -> None:
    log_file = join(log_folder, step.replace(' ', '_') + '.log')
    print(f'[demo {number}/{num_steps}] {step}: {" ".join(command)}  (log: {log_file})', flush=True)
    start = time.time()

    def show(line: str) -> None:
        shown = progress(line) if progress is not None else None
        if shown:
            print(f'    {shown}', flush=True)

    finished = run_logged(command, environment, log_file, show)
    if finished.return_code != 0:
        raise SystemExit(f'[demo] {step} failed (exit {finished.return_code}). Last lines of {log_file}:\n'
                         f'{log_tail(log_file)}')
    print(f'[demo {number}/{num_steps}] {step} done in {time.time() - start:.0f} s', flush=True)


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


def _train_predict_evaluate(first_step: int, num_steps: int, base: type, dataset_id: int, raw: str, out: str,
                            folders: dict, environment: dict, settings: dict) -> dict:
    """Steps first_step .. first_step + 2 (of num_steps) for one trainer: train the generated schedule variant of
    `base`, predict the test cases, evaluate them. Returns the model folder and the mean foreground Dice."""
    trainer = write_schedule_trainer(join(out, 'trainers'), base, settings['epochs'], settings['iterations_per_epoch'],
                                     DEFAULT_VAL_ITERATIONS_PER_EPOCH, settings['seed'])
    d, c, device, log = str(dataset_id), DEMO_CONFIGURATION, settings['device'], join(out, 'logs')
    print(f'[demo] training {trainer}: {base.__name__} on a {settings["epochs"]} x {settings["iterations_per_epoch"]}'
          f'-iteration schedule, generated in {join(out, "trainers")}', flush=True)
    _run(first_step, f'train {base.__name__}', ['nnUNetv2_train', d, c, 'all', '-tr', trainer, '-device', device],
         environment, log, epoch_progress(settings['epochs']), num_steps)
    predictions = join(out, 'predictions' if base is nnUNetTrainerDTC else f'predictions_{base.__name__}')
    _run(first_step + 1, f'predict {base.__name__}', ['nnUNetv2_predict', '-i', join(raw, 'imagesTs'), '-o',
                                                      predictions, '-d', d, '-c', c, '-f', 'all', '-tr', trainer,
                                                      '-device', device, '-npp', '1', '-nps', '1'], environment, log,
         num_steps=num_steps)
    model_folder = join(folders['nnUNet_results'], os.path.basename(raw),
                        convert_trainer_plans_config_to_identifier(trainer, DEFAULT_PLANS_IDENTIFIER, c))
    summary = join(predictions, 'summary.json')
    _run(first_step + 2, f'evaluate {base.__name__}', ['nnUNetv2_evaluate_folder', join(raw, 'labelsTs'), predictions,
                                                       '-djfile', join(model_folder, 'dataset.json'), '-pfile',
                                                       join(model_folder, 'plans.json'), '-o', summary,
                                                       '-np', str(settings['num_processes'])], environment, log,
         num_steps=num_steps)
    return {'dice': load_json(summary)['foreground_mean']['Dice'], 'model_folder': model_folder}


def comparison_lines(dice: Dict[str, float], num_test: int) -> List[str]:
    """The test Dice of each trainer (COMPARISON_ROWS' keys) side by side, and one line that says what the differences
    mean: DTC against vanilla nnU-Net, and how much of it the unlabelled images give (DTC against its ablation)."""
    rows = [f'[demo] {label:<58} {dice[trainer]:.4f}' for trainer, label in COMPARISON_ROWS.items()]
    over_vanilla = dice['nnUNetTrainerDTC'] - dice['nnUNetTrainer']
    from_unlabeled = dice['nnUNetTrainerDTC'] - dice['nnUNetTrainerDTC_LabeledOnly']
    beats = 'beats' if over_vanilla > 0 else 'does not beat'
    add = 'add' if from_unlabeled > 0 else 'do not add'
    return rows + [f'[demo] DTC {beats} nnU-Net ({over_vanilla:+.4f} Dice); '
                   f'the unlabelled images {add} to it ({from_unlabeled:+.4f} '
                   f'against the labelled-only ablation); {num_test} test cases, one seed: README gives the spread '
                   f'over {COMPARE_README_SEEDS} seeds (--seed N runs another).']


def run_demo(out: str, device: str, epochs: int, iterations_per_epoch: int, num_labeled: int,
             num_unlabeled: int, num_test: int, num_processes: int, overwrite: bool = False, compare: bool = False,
             seed: Optional[int] = None) -> dict:
    """Runs the demo (with `compare`: on the comparison set, for DTC and COMPARED_TRAINERS) and returns its record's
    result: 'dice' (DTC's), 'model_folder', and with `compare` 'compared': {trainer: {'dice', 'model_folder'}}."""
    out = os.path.abspath(out)
    settings = {'epochs': epochs, 'iterations_per_epoch': iterations_per_epoch, 'num_labeled': num_labeled,
                'num_unlabeled': num_unlabeled, 'num_test': num_test, 'device': device}
    if compare or seed is not None:
        settings.update(compare=compare, seed=seed)
    finished = prepare_out_folder(out, settings, overwrite)
    if finished is not None:
        print(f'[demo] {out} already holds this demo, finished (model: {finished["model_folder"]}). Add --overwrite '
              f'to run it again.')
        _print_result(finished, num_test)
        return finished
    folders = nnunet_folders_under(out)
    os.makedirs(join(out, 'logs'), exist_ok=True)
    write_json_atomic(join(out, DEMO_RECORD), {'settings': settings})
    environment = environment_with_trainers({**os.environ, **folders}, join(out, 'trainers'))
    environment.setdefault('nnUNet_n_proc_DA', str(num_processes))
    environment.setdefault('nnUNet_def_n_proc', str(num_processes))
    environment.setdefault('nnUNet_compile', 'false')

    dataset_id, name, style = (COMPARE_DATASET_ID, COMPARE_DATASET_NAME, COMPARE_STYLE) if compare else \
        (DEMO_DATASET_ID, DEMO_DATASET_NAME, EASY_STYLE)
    raw = make_synthetic_dataset(folders['nnUNet_raw'], dataset_id, name, num_labeled=num_labeled,
                                 num_unlabeled=num_unlabeled, num_test=num_test, style=style)
    print(f'[demo] synthetic dataset: {num_labeled} labelled, {num_unlabeled} unlabelled, {num_test} test cases '
          f'in {raw}' + (f' ({COMPARE_DESCRIPTION})' if compare else ''), flush=True)
    d, c, log = str(dataset_id), DEMO_CONFIGURATION, join(out, 'logs')
    steps = NUM_COMPARE_STEPS if compare else NUM_STEPS
    _run(1, 'plan and preprocess', ['nnUNetv2_plan_and_preprocess', '-d', d, '-c', c, '-np', str(num_processes),
                                    '--verify_dataset_integrity'], environment, log, _planning_phase, steps)
    _run(2, 'preprocess unlabelled', ['nnUNetv2_dtc_preprocess_unlabeled', '-d', d, '-c', c,
                                      '-np', str(num_processes)], environment, log, num_steps=steps)
    run_settings = {**settings, 'seed': seed, 'num_processes': num_processes}
    result = _train_predict_evaluate(3, steps, nnUNetTrainerDTC, dataset_id, raw, out, folders, environment,
                                     run_settings)
    if compare:
        result['compared'] = {base.__name__: _train_predict_evaluate(NUM_STEPS + 1 + 3 * index, steps, base, dataset_id,
                                                                     raw, out, folders, environment, run_settings)
                              for index, base in enumerate(COMPARED_TRAINERS)}
    write_json_atomic(join(out, DEMO_RECORD), {'settings': settings, **result})
    print(f'[demo] training log and progress plots: {join(result["model_folder"], "fold_all")}')
    print(f'[demo] the model\'s trainer lives in {join(out, "trainers")}: to predict with it later, add that folder '
          f'to nnUNet_extTrainer, or export it for stock nnU-Net with nnUNetv2_dtc_export_vanilla')
    _print_result(result, num_test)
    return result


def _print_result(result: dict, num_test: int) -> None:
    print(f'[demo] mean foreground Dice on {num_test} held-out test cases: {result["dice"]:.4f}', flush=True)
    if 'compared' in result:
        dice = {'nnUNetTrainerDTC': result['dice'], **{t: r['dice'] for t, r in result['compared'].items()}}
        print('\n'.join(comparison_lines(dice, num_test)), flush=True)


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
    parser.add_argument('--num_unlabeled', type=int, default=None,
                        help=f'Default: {DEFAULT_NUM_UNLABELED}; with --compare: {COMPARE_NUM_UNLABELED}')
    parser.add_argument('--num_test', type=int, default=None,
                        help=f'Default: {DEFAULT_NUM_TEST}; with --compare: {COMPARE_NUM_TEST}')
    parser.add_argument('--compare', action='store_true',
                        help='Run on a harder synthetic set (few small labelled ellipsoids, unlabelled and test ones '
                             'of every size, more noise) and train vanilla nnU-Net and DTC\'s labelled-only ablation '
                             'with the same schedule too; prints their test Dice side by side.')
    parser.add_argument('--seed', type=int, default=None,
                        help='Seed the trainings (network initialisation and the trainer\'s random draws; the '
                             'augmentation workers stay unseeded). Default: unseeded; with --compare: 0.')
    parser.add_argument('-np', type=int, default=2, help='Processes for preprocessing and data augmentation. '
                                                         'Default: 2')
    args = parser.parse_args()
    seed = COMPARE_DEFAULT_SEED if args.compare and args.seed is None else args.seed
    num_unlabeled = args.num_unlabeled if args.num_unlabeled is not None else \
        COMPARE_NUM_UNLABELED if args.compare else DEFAULT_NUM_UNLABELED
    num_test = args.num_test if args.num_test is not None else COMPARE_NUM_TEST if args.compare else DEFAULT_NUM_TEST
    run_demo(args.out, args.device, args.epochs, args.iterations_per_epoch, args.num_labeled, num_unlabeled,
             num_test, args.np, args.overwrite, args.compare, seed)
