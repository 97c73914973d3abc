"""nnUNetv2_dtc_benchmark end to end on a tiny synthetic dataset in CPU mode: every default method, the pseudo-label
recipe's and the upper bound's derived datasets, the reports and galleries, and reuse on a second invocation."""
import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from scipy.stats import wilcoxon

from helpers.nnunet_folders import run_console_script
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import make_ssl_dataset
from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import preprocess_unlabeled

SOURCE_ID, DATASET_ID = 992, 993
DATASET_NAME = 'Dataset993_BenchSSL'
# derived datasets: these names, then a hash of what they depend on
PSEUDO_LABEL_PREFIX, UPPER_BOUND_PREFIX = 'Dataset994_BenchSSL_dtcbench_pseudo_label_s0_', \
    'Dataset995_BenchSSL_dtcbench_upper_bound_'
CPU_CONFIGURATION = '3d_fullres_dtcbench_cpu_div4'
# method -> its run's key (the trainer for a method on the benchmark's dataset)
TRAINERS = {'nnUNetTrainer': 'nnUNetTrainer_1ep_2it_s0', 'nnUNetTrainerDTC': 'nnUNetTrainerDTC_1ep_2it_s0',
            'nnUNetTrainerDTC_LabeledOnly': 'nnUNetTrainerDTC_LabeledOnly_1ep_2it_s0',
            'pseudo_label': 'pseudo_label_nnUNetTrainer_1ep_2it_s0',
            'upper_bound': 'upper_bound_nnUNetTrainer_1ep_2it_s0'}
METHOD_NAMES = {'nnUNetTrainer': 'nnU-Net (labelled only)', 'nnUNetTrainerDTC': 'DTC (labelled + unlabelled)',
                'nnUNetTrainerDTC_LabeledOnly': 'DTC losses, labelled only (ablation)',
                'pseudo_label': 'nnU-Net + pseudo-labels (self-training)',
                'upper_bound': 'nnU-Net, all labelled (upper bound)'}
BENCHMARK_TIMEOUT_S = 1800  # five CPU trainings and predictions on a loaded 2-core machine
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
        run = next(r for r in report['runs'] if r['key'] == trainer)
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
    source = make_synthetic_dataset(str(nnunet_env.raw), SOURCE_ID, 'Bench', num_labeled=8, num_unlabeled=0,
                                    num_test=0, shape=(16, 16, 16))
    make_ssl_dataset(SOURCE_ID, DATASET_ID, num_test=2, num_labeled=3, link=True)
    out = tmp_path / 'benchmark'
    arguments = ['-d', DATASET_ID, '-c', '3d_fullres', '--epochs', 1, '--iterations_per_epoch', 2,
                 '--val_iterations', 1, '-np', 1, '--device', 'cpu', '--cpu_mode', '--upper_bound', '--out', out]
    started = time.time()
    first = run_console_script(nnunet_env, ['nnUNetv2_dtc_benchmark'], *arguments, timeout=BENCHMARK_TIMEOUT_S)
    first_seconds = time.time() - started
    assert '[nnUNetv2_dtc_benchmark 24/24] report' in first.stdout

    report = json.loads((out / 'benchmark.json').read_text())
    markdown = (out / 'benchmark.md').read_text()
    for png in ('paired_dice.png', 'hd95_boxplot.png', 'training_curves.png', 'overlays_seed0.png'):
        assert (out / png).read_bytes()[:8] == PNG_SIGNATURE
    assert [run['key'] for run in report['runs']] == list(TRAINERS.values())
    training_datasets = [run['training_dataset'] for run in report['runs']]
    assert training_datasets[:3] == [DATASET_NAME] * 3
    assert training_datasets[3].startswith(PSEUDO_LABEL_PREFIX) and training_datasets[4].startswith(UPPER_BOUND_PREFIX)
    assert report['trained_configuration'] == CPU_CONFIGURATION and report['settings']['cpu_mode'] is True
    assert '**CPU mode was used.**' in markdown and CPU_CONFIGURATION in markdown

    _check_derived_datasets(nnunet_env, out, report, source)
    _check_gap_closed(report, markdown)
    _check_overlays(report, markdown)
    contribution = report['results']['none']['unlabeled_contribution']['nnUNetTrainerDTC']['per_seed'][0]['Dice'][
        'difference']
    assert contribution['mean'] == pytest.approx(_foreground_mean(report, TRAINERS['nnUNetTrainerDTC'], 'Dice') -
                                                 _foreground_mean(report, TRAINERS['nnUNetTrainerDTC_LabeledOnly'],
                                                                  'Dice'))
    assert '## What the unlabelled images add (DTC − its labelled-only ablation' in markdown
    # the dual-task disagreement of the test cases, for the two DTC trainers (2 cases: too few for a correlation)
    validation = report['disagreement_validation']
    assert [(row['method'], row['n_cases'], row['spearman_rho']) for row in validation] == \
        [('nnUNetTrainerDTC', 2, None), ('nnUNetTrainerDTC_LabeledOnly', 2, None)]
    for row in validation:
        ranked = (out / 'rankings' / row['key'] / 'annotation_priority.csv').read_text().splitlines()
        assert ranked[0].startswith('case,score,') and len(ranked) == 3
    assert '## Does the dual-task disagreement predict the error?' in markdown

    # the CPU configuration: inherits 3d_fullres, only a quarter of its widths, every method trained it
    plans_file = nnunet_env.preprocessed / DATASET_NAME / 'nnUNetPlans.json'
    plans = PlansManager(str(plans_file))
    parent, child = (plans.get_configuration(c) for c in ('3d_fullres', CPU_CONFIGURATION))
    parent_features = parent.network_arch_init_kwargs['features_per_stage']
    assert child.network_arch_init_kwargs['features_per_stage'] == [max(4, f // 4) for f in parent_features]
    assert child.data_identifier == parent.data_identifier
    assert report['cpu_mode']['features_per_stage'] == [max(4, f // 4) for f in parent_features]
    trained_commands = [c['command'] for c in report['commands'] if c['step'].startswith('train ')]
    assert [c[c.index('-tr') + 1] for c in trained_commands] == [run['trainer'] for run in report['runs']]
    assert all(c[2] == CPU_CONFIGURATION and c[3] == 'all' and c[-2:] == ['-device', 'cpu'] for c in trained_commands)
    predict_commands = [c['command'] for c in report['commands'] if c['step'].startswith('predict ')]
    assert all(['-f', 'all', '-chk', 'checkpoint_final.pth'] == c[c.index('-f'):c.index('-f') + 4]
               for c in predict_commands)
    # DTC's level-set output: one more 1x1 output channel (weights over the first stage's features, plus a bias)
    parameters = {run['method']: run['parameters'] for run in report['runs']}
    assert parameters['nnUNetTrainerDTC'] - parameters['nnUNetTrainer'] == parent_features[0] // 4 + 1
    assert parameters['nnUNetTrainerDTC_LabeledOnly'] == parameters['nnUNetTrainerDTC']
    assert parameters['pseudo_label'] == parameters['upper_bound'] == parameters['nnUNetTrainer']
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
    # per_case.csv holds exactly the per-case values, so runs of another session can be paired with these later
    with open(out / 'per_case.csv', newline='') as f:
        per_case = list(csv.DictReader(f))
    for postprocessing in ('none', 'largest_component'):
        for method, key in TRAINERS.items():
            for metric in ('Dice', 'HD95_mm'):
                written = [float(r[metric]) for r in per_case
                           if (r['postprocessing'], r['method'], r['class']) == (postprocessing, method, '1')]
                assert written == _case_values(report, postprocessing, key, metric)
    # and nnUNetv2_dtc_compare_reports, pairing from it, prints the headline row of benchmark.md
    paired = run_console_script(nnunet_env, ['nnUNetv2_dtc_compare_reports'], out, '--method', 'nnUNetTrainerDTC')
    headline_row = _table(markdown, 'What the unlabelled images add')[0]
    results_table = paired.stdout.split('| Seed | Dice', 1)[1].splitlines()
    printed_row = [cell.strip() for cell in results_table[2].strip('|').split('|')]
    assert printed_row[0] == headline_row[0] == '0'
    assert printed_row[3:9] == headline_row[1:7]  # Dice and HD95: difference, p, W/L/T

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
    assert second.stdout.count('reused') >= 5 * 4 + 3  # train, predict, both metrics; pseudo-labels, datasets
    again = json.loads((out / 'benchmark.json').read_text())
    assert all(c['reused'] for c in again['commands'])
    assert [c['command'] for c in again['commands'] if c['step'].startswith('train ')] == trained_commands
    assert _table((out / 'benchmark.md').read_text(), 'Test set, as predicted') == \
        _table(markdown, 'Test set, as predicted')


def _check_derived_datasets(nnunet_env, out: Path, report: dict, source: str) -> None:
    """The pseudo-label and upper-bound datasets: the labelled cases plus the unlabelled ones with the teacher's
    predictions or their true labels, preprocessed with the source's plans unchanged but for the dataset name."""
    ssl = json.loads((nnunet_env.raw / DATASET_NAME / 'ssl_split.json').read_text())
    source_plans = json.loads((nnunet_env.preprocessed / DATASET_NAME / 'nnUNetPlans.json').read_text())
    pseudo_label_dataset, upper_bound_dataset = (run['training_dataset'] for run in report['runs'][3:])
    for name in (pseudo_label_dataset, upper_bound_dataset):
        plans = json.loads((nnunet_env.preprocessed / name / 'nnUNetPlans.json').read_text())
        assert plans['dataset_name'] == name and {**plans, 'dataset_name': DATASET_NAME} == source_plans
        cases = sorted(p.name[:-len('.nii.gz')] for p in (nnunet_env.raw / name / 'labelsTr').iterdir())
        assert cases == sorted(ssl['labeled'] + ssl['unlabeled'])
        data = plans['configurations']['3d_fullres']['data_identifier']
        assert sorted(p.name for p in (nnunet_env.preprocessed / name / data).glob('*.pkl')) == \
            [f'{c}.pkl' for c in cases]
    teacher_predictions = out / 'pseudo_labels' / TRAINERS['nnUNetTrainer']
    for case in ssl['unlabeled']:
        pseudo = nnunet_env.raw / pseudo_label_dataset / 'labelsTr' / f'{case}.nii.gz'
        assert pseudo.read_bytes() == (teacher_predictions / f'{case}.nii.gz').read_bytes()
        true = nnunet_env.raw / upper_bound_dataset / 'labelsTr' / f'{case}.nii.gz'
        assert true.samefile(Path(source) / 'labelsTr' / f'{case}.nii.gz')
    pseudo_run = report['runs'][3]
    assert pseudo_run['training']['pseudo_labels']['checkpoint'] == report['runs'][0]['checkpoint']
    assert pseudo_run['training']['labeled_cases'] == sorted(ssl['labeled'] + ssl['unlabeled'])


def _foreground_mean(report: dict, key: str, metric: str) -> float:
    return float(np.mean(_case_values(report, 'none', key, metric)))


def _check_gap_closed(report: dict, markdown: str) -> None:
    """(method - vanilla) / (upper bound - vanilla) of the test means, by hand from benchmark.json's per-case values."""
    rows = {row['method']: row for row in report['results']['none']['rows']}
    vanilla, upper = (_foreground_mean(report, TRAINERS[m], 'Dice') for m in ('nnUNetTrainer', 'upper_bound'))
    for method in ('nnUNetTrainerDTC', 'nnUNetTrainerDTC_LabeledOnly', 'pseudo_label'):
        share = rows[method]['gap_closed']['Dice']
        if upper == vanilla:
            assert share is None
        else:
            assert share == pytest.approx((_foreground_mean(report, TRAINERS[method], 'Dice') - vanilla) /
                                          (upper - vanilla))
    assert rows['nnUNetTrainer']['gap_closed'] is None and rows['upper_bound']['gap_closed'] is None
    if upper != vanilla:
        gaps = _table(markdown, 'Share of the gap to the upper bound closed (test set, as predicted)')
        assert [row[0] for row in gaps] == [METHOD_NAMES[m] for m in ('nnUNetTrainerDTC',
                                                                      'nnUNetTrainerDTC_LabeledOnly', 'pseudo_label')]


def _check_overlays(report: dict, markdown: str) -> None:
    """The gallery of seed 0 shows the cases with their Dice of benchmark.json, ordered by DTC's gain."""
    overlay, = report['overlays']
    assert overlay['method'] == TRAINERS['nnUNetTrainerDTC'] and overlay['baseline'] == TRAINERS['nnUNetTrainer']
    test_cases = report['dataset']['test_cases']
    assert sorted(c['case'] for c in overlay['cases']) == sorted(test_cases)  # two test cases: gain and loss
    for shown in overlay['cases']:
        for key, dice in shown['dice'].items():
            per_case = report['results']['none']['per_case'][key]['metric_per_case']
            assert dice == pytest.approx(next(c for c in per_case if c['case_id'] == shown['case'])['metrics']['1']
                                         ['Dice'])
        assert shown['gain'] == pytest.approx(shown['dice'][overlay['method']] - shown['dice'][overlay['baseline']])
    assert [c['role'] for c in overlay['cases']] == ['largest gain', 'largest loss']
    assert overlay['cases'][0]['gain'] >= overlay['cases'][-1]['gain']
    assert '![seed 0](overlays_seed0.png)' in markdown
