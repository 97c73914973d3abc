"""The benchmark's pieces that decide what runs and what the report says: the CPU configuration, the seeded trainers,
reuse/resume of a training, the report's cells and the seed summary (end to end: cli/test_benchmark_cli.py)."""
import csv
import io
import json
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from helpers.tiny_plans import tiny_plans
from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.comparison import SEED_SUMMARY, summarize_postprocessing
from nnunetv2_dtc.benchmark.data import BenchmarkDataset
from nnunetv2_dtc.benchmark.metrics import METRIC_NAMES, NO_POSTPROCESSING
from nnunetv2_dtc.benchmark.per_case_table import CSV_COLUMNS, per_case_csv
from nnunetv2_dtc.benchmark.plans import add_cpu_configuration, reduced_features
from nnunetv2_dtc.benchmark.report import MAIN_COLUMNS, METRIC_HEADERS, main_table, mean_std, p_value
from nnunetv2_dtc.benchmark.settings import BenchmarkSettings
from nnunetv2_dtc.benchmark.training import (CHECKPOINT_EVERY_EPOCHS, RUN_RECORD_FILE, BenchmarkRun,
                                            BenchmarkRunConflict, train)
from nnunetv2_dtc.generated_trainers import write_schedule_trainer
from nnunetv2_dtc.unlabeled_handling.manifest import fingerprint, preprocessing_inputs

CPU_CONFIGURATION = '3d_fullres_dtcbench_cpu_div4'


def test_cpu_configuration_narrows_only_the_features_and_shares_the_preprocessed_data(tmp_path):
    plans = tiny_plans()
    plans['configurations']['tiny']['architecture']['arch_kwargs']['features_per_stage'] = [32, 64, 128]
    plans['configurations']['other'] = {'inherits_from': 'tiny', 'batch_size': 7}
    plans_file = tmp_path / 'plans.json'
    plans_file.write_text(json.dumps(plans))

    name, written = add_cpu_configuration(str(plans_file), 'tiny', 8)
    assert (name, written) == ('tiny_dtcbench_cpu_div8', True)
    stored = json.loads(plans_file.read_text())
    assert stored['configurations']['other'] == plans['configurations']['other']
    assert stored['configurations']['tiny'] == plans['configurations']['tiny']
    manager = PlansManager(stored)
    parent, child = (manager.get_configuration(c).configuration for c in ('tiny', name))
    assert child['architecture']['arch_kwargs'].pop('features_per_stage') == [4, 8, 16]
    parent['architecture']['arch_kwargs'].pop('features_per_stage')
    assert {k: v for k, v in child.items() if k != 'inherits_from'} == parent
    dataset_json = {'channel_names': {'0': 'MRI'}, 'labels': {'background': 0, 'a': 1}, 'file_ending': '.nii.gz'}
    assert fingerprint(preprocessing_inputs(manager, name, dataset_json)) == \
        fingerprint(preprocessing_inputs(manager, 'tiny', dataset_json))
    assert add_cpu_configuration(str(plans_file), 'tiny', 8) == (name, False)
    assert not list(tmp_path.glob('*.partial'))


def test_reduced_features_keep_at_least_four_and_never_widen():
    assert reduced_features([32, 64, 320], 4) == [8, 16, 80]
    assert reduced_features([8, 16, 2], 4) == [4, 4, 2]


def test_seeded_trainer_seeds_every_generator_checkpoints_every_epoch_and_skips_the_final_validation(nnunet_env,
                                                                                                     tmp_path):
    import importlib.util
    name = write_schedule_trainer(str(tmp_path), nnUNetTrainer, 3, 5, 2, seed=7, final_validation=False,
                                  save_every=CHECKPOINT_EVERY_EPOCHS)
    assert name == 'nnUNetTrainer_3ep_5it_s7'
    spec = importlib.util.spec_from_file_location(name, tmp_path / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    trainer = getattr(module, name)({**tiny_plans(), 'continue_training': False}, 'tiny', 0,
                                    {'channel_names': {'0': 'MRI'}, 'labels': {'background': 0, 'a': 1},
                                     'numTraining': 2, 'file_ending': '.nii.gz'}, torch.device('cpu'))
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (3, 5, 2)
    assert trainer.save_every == 1  # nnU-Net's 50 would leave a stopped benchmark nothing recent to resume from
    assert torch.initial_seed() == 7 and np.random.get_state()[1][0] == 7
    random_state, torch_state = random.getstate(), torch.get_rng_state()
    random.seed(7), torch.manual_seed(7)
    assert random_state == random.getstate() and torch.equal(torch_state, torch.get_rng_state())
    trainer.perform_actual_validation()  # nnU-Net's would fail: no network was built
    assert 'Final validation skipped' in Path(trainer.log_file).read_text()


class _RecordingSteps(BenchmarkSteps):
    """Runs nothing: records the commands a step would run."""

    def run(self, step, command, echo=None):
        self.commands.append({'step': step, 'command': command})
        return self.commands[-1]


def _run_setup(tmp_path):
    run = BenchmarkRun('nnUNetTrainerDTC', 0, 'nnUNetTrainerDTC_1ep_2it_s0', str(tmp_path / 'model'), 993,
                       'Dataset993_Bench')
    dataset = BenchmarkDataset(993, 'Dataset993_Bench', str(tmp_path / 'raw'), '.nii.gz', ['a'], ['t'])
    settings = BenchmarkSettings('993', '3d_fullres', epochs=1, iterations_per_epoch=2, device='cpu')
    return run, dataset, settings, _RecordingSteps(10, {}, str(tmp_path / 'logs'))


def test_unfinished_training_resumes_and_a_finished_one_is_reused(tmp_path):
    run, dataset, settings, steps = _run_setup(tmp_path)
    expected = {'trainer': run.trainer, 'epochs': 1}
    train(run, expected, settings, dataset, CPU_CONFIGURATION, steps)
    assert steps.commands[-1]['command'] == ['nnUNetv2_train', '993', CPU_CONFIGURATION, 'all', '-tr', run.trainer,
                                             '-p', 'nnUNetPlans', '-device', 'cpu']
    assert json.loads(Path(run.fold_folder, RUN_RECORD_FILE).read_text())['training'] == expected

    Path(run.fold_folder, 'checkpoint_latest.pth').touch()
    train(run, expected, settings, dataset, CPU_CONFIGURATION, steps)
    assert steps.commands[-1]['command'][-1] == '--c'

    Path(run.checkpoint).touch()
    before = len(steps.commands)
    train(run, expected, settings, dataset, CPU_CONFIGURATION, steps)
    assert len(steps.commands) == before + 1 and steps.commands[-1]['reused'] is True


def test_a_results_folder_trained_otherwise_is_never_overwritten(tmp_path):
    run, dataset, settings, steps = _run_setup(tmp_path)
    train(run, {'trainer': run.trainer, 'epochs': 1}, settings, dataset, CPU_CONFIGURATION, steps)
    with pytest.raises(BenchmarkRunConflict, match=r'other settings \(epochs differ'):
        train(run, {'trainer': run.trainer, 'epochs': 2}, settings, dataset, CPU_CONFIGURATION, steps)
    os.remove(Path(run.fold_folder, RUN_RECORD_FILE))
    Path(run.checkpoint).touch()
    with pytest.raises(BenchmarkRunConflict, match='not trained by nnUNetv2_dtc_benchmark'):
        train(run, {'trainer': run.trainer, 'epochs': 1}, settings, dataset, CPU_CONFIGURATION, steps)


def test_report_cells_say_how_many_cases_had_a_value():
    assert mean_std({'mean': 1.23456, 'std': 0.1, 'n': 3}, 2, n_cases=4) == '1.23 ± 0.10 (n=3)'
    assert mean_std({'mean': 1.23456, 'std': 0.1, 'n': 4}, 2, n_cases=4) == '1.23 ± 0.10'
    assert mean_std({'mean': None, 'std': None, 'n': 0}, 2, n_cases=4) == '–'
    assert p_value(0.00001) == '<0.0001' and p_value(0.5) == '0.5000' and p_value(None) == '–'
    assert re.fullmatch(r'\d\.\d{4}', p_value(0.123456))


def _metrics_result(dice_per_case) -> dict:
    """metrics.folder_metrics' layout for one class with the given per-case Dice (the other metrics
    derived from it, so every metric varies)."""
    return {'postprocessing': NO_POSTPROCESSING, 'labels_or_regions': ['1'],
            'metric_per_case': [{'case_id': f'case{i}', 'metrics': {'1': {
                'status': 'ok', **{metric: dice * (k + 1) for k, metric in enumerate(METRIC_NAMES)}}}}
                for i, dice in enumerate(dice_per_case)]}


def test_several_seeds_give_per_seed_rows_and_a_summary_compared_on_seed_averaged_cases():
    # binary fractions: the seed averages are exact, so equal ones are ties
    dice = {('nnUNetTrainer', 0): [0.5, 0.625, 0.75], ('nnUNetTrainer', 1): [0.75, 0.625, 0.25],
            ('nnUNetTrainerDTC', 0): [0.625, 0.75, 0.75], ('nnUNetTrainerDTC', 1): [0.875, 0.75, 0.25]}
    runs = [BenchmarkRun(method, seed, f'{method}_1ep_2it_s{seed}', '', 1, 'Dataset001_A') for method, seed in dice]
    results = {run.trainer: _metrics_result(dice[run.method, run.seed]) for run in runs}
    infos = {run.trainer: {'epoch_seconds': {'mean': 2.0 + run.seed, 'std': 0.0, 'per_epoch': [2.0 + run.seed]},
                           'parameters': 100} for run in runs}

    rows = summarize_postprocessing(runs, results, infos)['rows']
    assert [(row['method'], row['seed']) for row in rows] == [
        ('nnUNetTrainer', 0), ('nnUNetTrainer', 1), ('nnUNetTrainer', SEED_SUMMARY),
        ('nnUNetTrainerDTC', 0), ('nnUNetTrainerDTC', 1), ('nnUNetTrainerDTC', SEED_SUMMARY)]
    dtc_seed_1, dtc_summary = rows[4], rows[5]
    seed_1_dice = dtc_seed_1['vs_vanilla']['Dice']
    assert (seed_1_dice['wins'], seed_1_dice['losses'], seed_1_dice['ties']) == (2, 0, 1)
    seed_means = [np.mean(dice['nnUNetTrainerDTC', seed]) for seed in (0, 1)]
    assert dtc_summary['metrics']['Dice']['mean'] == pytest.approx(np.mean(seed_means))
    assert dtc_summary['metrics']['Dice']['std'] == pytest.approx(np.std(seed_means))
    # seed-averaged cases: DTC 0.75, 0.75, 0.5 against nnU-Net 0.625, 0.625, 0.5
    summary_dice = dtc_summary['vs_vanilla']['Dice']
    assert (summary_dice['wins'], summary_dice['losses'], summary_dice['ties']) == (2, 0, 1)
    assert summary_dice['difference']['mean'] == pytest.approx(np.mean([0.125, 0.125, 0]))
    assert dtc_summary['time_per_epoch_s']['mean'] == pytest.approx(2.5)

    cells = [line.split(' | ') for line in main_table(rows)[2:]]
    assert cells[5][1] == SEED_SUMMARY
    assert cells[5][2] == f'{np.mean(seed_means):.4f} ± {np.std(seed_means):.4f}'
    assert cells[5][7] == '2/0/1'


def test_a_seed_summary_says_when_a_seed_had_no_defined_mean():
    # seed 0's HD95 is undefined in every case (e.g. a class never predicted): its summary rests on seed 1 alone
    dice = {('nnUNetTrainer', 0): [0.5, 0.75], ('nnUNetTrainer', 1): [0.75, 0.25]}
    runs = [BenchmarkRun(method, seed, f'{method}_1ep_2it_s{seed}', '', 1, 'Dataset001_A') for method, seed in dice]
    results = {run.trainer: _metrics_result(dice[run.method, run.seed]) for run in runs}
    for case in results['nnUNetTrainer_1ep_2it_s0']['metric_per_case']:
        case['metrics']['1']['HD95_mm'] = None
    infos = {run.trainer: {'epoch_seconds': {'mean': 2.0, 'std': 0.0, 'per_epoch': [2.0]}, 'parameters': 100}
             for run in runs}

    cells = [line.split(' | ') for line in main_table(summarize_postprocessing(runs, results, infos)['rows'])[2:]]
    hd95 = MAIN_COLUMNS.index(METRIC_HEADERS['HD95_mm'])
    assert cells[0][hd95] == '–'
    assert cells[2][1] == SEED_SUMMARY and cells[2][hd95].endswith('(n=1)')
    assert not cells[2][MAIN_COLUMNS.index(METRIC_HEADERS['Dice'])].endswith(')')


def test_the_per_case_table_holds_every_run_case_and_class_with_the_foreground_mean():
    dice = {('nnUNetTrainer', 0): [0.5, 0.625], ('nnUNetTrainerDTC', 0): [0.75, 0.875]}
    runs = [BenchmarkRun(method, seed, f'{method}_1ep_2it_s{seed}', '', 1, 'Dataset001_A') for method, seed in dice]
    results = {}
    for run in runs:
        result = _metrics_result(dice[run.method, run.seed])
        result['labels_or_regions'] = ['1', '2']
        for case in result['metric_per_case']:  # class 2: half of class 1, so the foreground mean is 3/4 of it
            case['metrics']['2'] = {metric: value / 2 for metric, value in case['metrics']['1'].items()
                                    if metric != 'status'}
        results[run.key] = result
    results[runs[0].key]['metric_per_case'][1]['metrics']['2']['HD95_mm'] = None  # an undefined distance
    metrics = {NO_POSTPROCESSING: results, 'largest_component': results}

    rows = list(csv.DictReader(io.StringIO(per_case_csv(runs, metrics))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2 * 2 * 2 * 3  # post-processings x runs x cases x (two classes and the foreground mean)
    by_key = {(r['postprocessing'], r['trainer'], r['case_id'], r['class']): r for r in rows}
    dtc = runs[1].trainer
    assert float(by_key[NO_POSTPROCESSING, dtc, 'case1', '1']['Dice']) == 0.875
    assert float(by_key[NO_POSTPROCESSING, dtc, 'case1', '2']['Dice']) == 0.4375
    assert float(by_key[NO_POSTPROCESSING, dtc, 'case1', 'foreground']['Dice']) == pytest.approx(0.875 * 0.75)
    assert by_key[NO_POSTPROCESSING, dtc, 'case1', 'foreground']['seed'] == '0'
    vanilla = runs[0].trainer
    assert by_key[NO_POSTPROCESSING, vanilla, 'case1', '2']['HD95_mm'] == ''
    assert by_key[NO_POSTPROCESSING, vanilla, 'case1', 'foreground']['HD95_mm'] == ''
    assert by_key[NO_POSTPROCESSING, vanilla, 'case0', 'foreground']['HD95_mm'] != ''
