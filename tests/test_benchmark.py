"""nnUNetv2_dtc_benchmark end to end on a tiny synthetic dataset in CPU mode (all three methods, reports, reuse on a
second invocation), and its pieces that decide what runs: the CPU configuration, the seeded trainers, reuse/resume."""
import json
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import wilcoxon

from conftest import run_console_script
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2_dtc.benchmark_commands import BenchmarkSteps
from nnunetv2_dtc.benchmark_comparison import SEED_SUMMARY, summarize_postprocessing
from nnunetv2_dtc.benchmark_data import BenchmarkDataset
from nnunetv2_dtc.benchmark_plans import add_cpu_configuration, reduced_features
from nnunetv2_dtc.benchmark_report import MAIN_COLUMNS, METRIC_HEADERS, main_table, mean_std, p_value
from nnunetv2_dtc.benchmark_settings import BenchmarkSettings
from nnunetv2_dtc.benchmark_training import RUN_RECORD_FILE, BenchmarkRun, BenchmarkRunConflict, train
from nnunetv2_dtc.seeded_schedule_trainers import write_seeded_schedule_trainer
from nnunetv2_dtc.segmentation_metrics import METRIC_NAMES, NO_POSTPROCESSING
from nnunetv2_dtc.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.unlabeled_handling.manifest import fingerprint, preprocessing_inputs
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import preprocess_unlabeled
from tiny_plans import tiny_plans

DATASET_ID = 993
CPU_CONFIGURATION = '3d_fullres_dtcbench_cpu_div4'
TRAINERS = {'nnUNetTrainer': 'nnUNetTrainer_1ep_2it_s0', 'nnUNetTrainerDTC': 'nnUNetTrainerDTC_1ep_2it_s0',
            'nnUNetTrainerDTC_LabeledOnly': 'nnUNetTrainerDTC_LabeledOnly_1ep_2it_s0'}
METHOD_NAMES = {'nnUNetTrainer': 'nnU-Net (labelled only)', 'nnUNetTrainerDTC': 'DTC (labelled + unlabelled)',
                'nnUNetTrainerDTC_LabeledOnly': 'DTC losses, labelled only (ablation)'}
BENCHMARK_TIMEOUT_S = 1800  # three CPU trainings and predictions on a loaded 2-core machine
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _table(markdown: str, heading: str) -> list:
    """The rows (lists of cells) of the first table after the heading that starts with `heading`."""
    section = markdown.split('\n## ' + heading, 1)[1].split('\n## ', 1)[0]
    lines = [line for line in section.splitlines() if line.startswith('|')]
    return [[cell.strip() for cell in line.strip('|').split('|')] for line in lines[2:]]


def _mean_std_cell(values, decimals: int) -> str:
    return f'{np.mean(values):.{decimals}f} ± {np.std(values):.{decimals}f}'


def _case_values(report: dict, postprocessing: str, trainer: str, metric: str) -> list:
    cases = report['results'][postprocessing]['per_case'][trainer]['metric_per_case']
    return [case['metrics']['1'][metric] for case in cases]


def _check_table(report: dict, markdown: str, postprocessing: str, heading: str) -> None:
    rows = _table(markdown, heading)
    assert [row[0] for row in rows] == list(METHOD_NAMES.values())
    vanilla_dice = _case_values(report, postprocessing, TRAINERS['nnUNetTrainer'], 'Dice')
    for row, (method, trainer) in zip(rows, TRAINERS.items()):
        dice = _case_values(report, postprocessing, trainer, 'Dice')
        assert row[1] == '0'
        assert row[2] == _mean_std_cell(dice, 4)
        assert row[3] == _mean_std_cell(_case_values(report, postprocessing, trainer, 'IoU'), 4)
        assert row[4] == _mean_std_cell(_case_values(report, postprocessing, trainer, 'HD95_mm'), 2)
        assert row[5] == _mean_std_cell(_case_values(report, postprocessing, trainer, 'ASD_mm'), 2)
        run = next(r for r in report['runs'] if r['trainer'] == trainer)
        checkpoint = torch.load(run['checkpoint'], map_location='cpu', weights_only=False)['logging']
        epoch_times = np.subtract(checkpoint['epoch_end_timestamps'], checkpoint['epoch_start_timestamps'])
        assert row[8] == _mean_std_cell(epoch_times, 2)
        assert row[9] == f'{run["parameters"]:,}'
        if method == 'nnUNetTrainer':
            assert row[6:8] == ['–', '–']
            continue
        differences = np.subtract(dice, vanilla_dice)
        assert row[7] == f'{np.sum(differences > 0)}/{np.sum(differences < 0)}/{np.sum(differences == 0)}'
        if np.any(differences != 0):
            assert row[6] == f'{wilcoxon(differences).pvalue:.4f}'


def test_benchmark_runs_all_methods_reports_them_and_reuses_finished_runs(nnunet_env, tmp_path, capsys):
    make_synthetic_dataset(str(nnunet_env.raw), DATASET_ID, 'Bench', num_labeled=3, num_unlabeled=3, num_test=2,
                           shape=(16, 16, 16))
    out = tmp_path / 'benchmark'
    arguments = ['-d', DATASET_ID, '-c', '3d_fullres', '--epochs', 1, '--iterations_per_epoch', 2,
                 '--val_iterations', 1, '-np', 1, '--device', 'cpu', '--cpu_mode', '--out', out]
    started = time.time()
    first = run_console_script(nnunet_env, ['nnUNetv2_dtc_benchmark'], *arguments, timeout=BENCHMARK_TIMEOUT_S)
    first_seconds = time.time() - started
    assert '[nnUNetv2_dtc_benchmark 13/13] report' in first.stdout

    report = json.loads((out / 'benchmark.json').read_text())
    markdown = (out / 'benchmark.md').read_text()
    for png in ('paired_dice.png', 'hd95_boxplot.png', 'training_curves.png'):
        assert (out / png).read_bytes()[:8] == PNG_SIGNATURE
    assert [run['trainer'] for run in report['runs']] == list(TRAINERS.values())
    assert report['trained_configuration'] == CPU_CONFIGURATION and report['settings']['cpu_mode'] is True
    assert '**CPU mode was used.**' in markdown and CPU_CONFIGURATION in markdown

    # the CPU configuration: inherits 3d_fullres, only a quarter of its widths, every method trained it
    plans_file = nnunet_env.preprocessed / 'Dataset993_Bench' / 'nnUNetPlans.json'
    plans = PlansManager(str(plans_file))
    parent, child = (plans.get_configuration(c) for c in ('3d_fullres', CPU_CONFIGURATION))
    parent_features = parent.network_arch_init_kwargs['features_per_stage']
    assert child.network_arch_init_kwargs['features_per_stage'] == [max(4, f // 4) for f in parent_features]
    assert child.data_identifier == parent.data_identifier
    assert report['cpu_mode']['features_per_stage'] == [max(4, f // 4) for f in parent_features]
    trained_commands = [c['command'] for c in report['commands'] if c['step'].startswith('train ')]
    assert [c[c.index('-tr') + 1] for c in trained_commands] == list(TRAINERS.values())
    assert all(c[2] == CPU_CONFIGURATION and c[3] == 'all' and c[-2:] == ['-device', 'cpu'] for c in trained_commands)
    predict_commands = [c['command'] for c in report['commands'] if c['step'].startswith('predict ')]
    assert all(['-f', 'all', '-chk', 'checkpoint_final.pth'] == c[c.index('-f'):c.index('-f') + 4]
               for c in predict_commands)
    # DTC's level-set output: one more 1x1 output channel (weights over the first stage's features, plus a bias)
    parameters = {run['method']: run['parameters'] for run in report['runs']}
    assert parameters['nnUNetTrainerDTC'] - parameters['nnUNetTrainer'] == parent_features[0] // 4 + 1
    assert parameters['nnUNetTrainerDTC_LabeledOnly'] == parameters['nnUNetTrainerDTC']
    dtc_curves = report['runs'][1]['curves']
    assert set(dtc_curves) == {'train_losses', 'val_losses', 'dtc_supervised_losses', 'dtc_sdf_losses',
                               'dtc_consistency_losses', 'dtc_consistency_weights'}
    assert set(report['runs'][0]['curves']) == {'train_losses', 'val_losses'}
    # the generated trainers skip nnU-Net's validation of fold `all` on its own training cases
    assert not any((Path(run['model_folder']) / 'fold_all' / 'validation').exists() for run in report['runs'])

    # the tables hold the per-case numbers of benchmark.json; the post-processed ones in a table of their own
    _check_table(report, markdown, 'none', 'Test set, as predicted')
    _check_table(report, markdown, 'largest_component', 'Test set, largest connected component')
    for postprocessing in ('none', 'largest_component'):
        assert {r['postprocessing'] for r in report['results'][postprocessing]['per_case'].values()} == \
               {postprocessing}

    # the CPU configuration shares its parent's preprocessed unlabelled cases (nnUNetv2_dtc_preprocess_unlabeled's
    # function, in this process: a subprocess would only add its start-up time)
    capsys.readouterr()
    preprocess_unlabeled(DATASET_ID, '3d_fullres', num_processes=1)
    printed = capsys.readouterr().out
    assert '3d_fullres: 3 unlabelled case(s) in' in printed and '3 already preprocessed, 0 to do' in printed

    finished = sorted(p for p in list(nnunet_env.results.rglob('*.pth')) + list((out / 'logs').iterdir()) +
                      list((out / 'predictions').rglob('*.nii.gz')) + list((out / 'metrics').iterdir()))
    stamps = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in finished}
    started = time.time()
    second = run_console_script(nnunet_env, ['nnUNetv2_dtc_benchmark'], *arguments, timeout=BENCHMARK_TIMEOUT_S)
    assert time.time() - started < first_seconds / 2
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in finished} == stamps
    assert second.stdout.count('reused') >= 3 * 4  # train, predict and both metrics of every run
    again = json.loads((out / 'benchmark.json').read_text())
    assert all(c['reused'] for c in again['commands'])
    assert [c['command'] for c in again['commands'] if c['step'].startswith('train ')] == trained_commands
    assert _table((out / 'benchmark.md').read_text(), 'Test set, as predicted') == \
        _table(markdown, 'Test set, as predicted')


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


def test_seeded_trainer_seeds_every_generator_and_skips_the_final_validation(nnunet_env, tmp_path):
    import importlib.util
    name = write_seeded_schedule_trainer(str(tmp_path), 'nnUNetTrainer', 3, 5, 2, seed=7, final_validation=False)
    assert name == 'nnUNetTrainer_3ep_5it_s7'
    spec = importlib.util.spec_from_file_location(name, tmp_path / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    trainer = getattr(module, name)({**tiny_plans(), 'continue_training': False}, 'tiny', 0,
                                    {'channel_names': {'0': 'MRI'}, 'labels': {'background': 0, 'a': 1},
                                     'numTraining': 2, 'file_ending': '.nii.gz'}, torch.device('cpu'))
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (3, 5, 2)
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
    run = BenchmarkRun('nnUNetTrainerDTC', 0, 'nnUNetTrainerDTC_1ep_2it_s0', str(tmp_path / 'model'))
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
    """segmentation_metrics.folder_metrics' layout for one class with the given per-case Dice (the other metrics
    derived from it, so every metric varies)."""
    return {'postprocessing': NO_POSTPROCESSING, 'labels_or_regions': ['1'],
            'metric_per_case': [{'case_id': f'case{i}', 'metrics': {'1': {
                'status': 'ok', **{metric: dice * (k + 1) for k, metric in enumerate(METRIC_NAMES)}}}}
                for i, dice in enumerate(dice_per_case)]}


def test_several_seeds_give_per_seed_rows_and_a_summary_compared_on_seed_averaged_cases():
    # binary fractions: the seed averages are exact, so equal ones are ties
    dice = {('nnUNetTrainer', 0): [0.5, 0.625, 0.75], ('nnUNetTrainer', 1): [0.75, 0.625, 0.25],
            ('nnUNetTrainerDTC', 0): [0.625, 0.75, 0.75], ('nnUNetTrainerDTC', 1): [0.875, 0.75, 0.25]}
    runs = [BenchmarkRun(method, seed, f'{method}_1ep_2it_s{seed}', '') for method, seed in dice]
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
    runs = [BenchmarkRun(method, seed, f'{method}_1ep_2it_s{seed}', '') for method, seed in dice]
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
