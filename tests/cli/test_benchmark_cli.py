"""nnUNetv2_dtc_benchmark end to end on a tiny synthetic dataset in CPU mode: all three methods, the reports, and
reuse on a second invocation."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from scipy.stats import wilcoxon

from helpers.nnunet_folders import run_console_script
from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import preprocess_unlabeled

DATASET_ID = 993
CPU_CONFIGURATION = '3d_fullres_dtcbench_cpu_div4'
TRAINERS = {'nnUNetTrainer': 'nnUNetTrainer_1ep_2it_s0', 'nnUNetTrainerDTC': 'nnUNetTrainerDTC_1ep_2it_s0',
            'nnUNetTrainerDTC_LabeledOnly': 'nnUNetTrainerDTC_LabeledOnly_1ep_2it_s0'}
METHOD_NAMES = {'nnUNetTrainer': 'nnU-Net (labelled only)', 'nnUNetTrainerDTC': 'DTC (labelled + unlabelled)',
                'nnUNetTrainerDTC_LabeledOnly': 'DTC losses, labelled only (ablation)'}
BENCHMARK_TIMEOUT_S = 1800  # three CPU trainings and predictions on a loaded 2-core machine
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'

pytestmark = pytest.mark.slow  # subprocesses of nnU-Net's commands


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
