"""The benchmark's baselines without training: the share of the gap to the upper bound (against a hand computation),
where derived datasets go (names, IDs, refusals), the upper bound's source check, and the overlay gallery's choices."""
import json

import numpy as np
import pytest

from nnunetv2_dtc.benchmark.comparison import SEED_SUMMARY, summarize_postprocessing
from nnunetv2_dtc.benchmark.data import BenchmarkDataError, BenchmarkDataset
from nnunetv2_dtc.benchmark.derived_data import derived_plans, plan_training_datasets, upper_bound_labels
from nnunetv2_dtc.benchmark.metrics import METRIC_NAMES, NO_POSTPROCESSING
from nnunetv2_dtc.benchmark.overlays import LARGEST_GAIN, LARGEST_LOSS, MEDIAN, foreground_classes, \
    largest_reference_slice, select_cases
from nnunetv2_dtc.benchmark.report import contribution_table, gap_table
from nnunetv2_dtc.benchmark.settings import BenchmarkSettings, BenchmarkSettingsError
from nnunetv2_dtc.benchmark.training import BenchmarkRun
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME

SOURCE = BenchmarkDataset(993, 'Dataset993_Bench', '', '.nii.gz', ['a', 'b'], ['t'])


def _result(dice_per_case) -> dict:
    """folder_metrics' layout for one class; every metric is Dice times its position, so all of them vary."""
    return {'postprocessing': NO_POSTPROCESSING, 'labels_or_regions': ['1'],
            'metric_per_case': [{'case_id': f'case{i}', 'metrics': {'1': {
                'status': 'ok', **{metric: dice * (k + 1) for k, metric in enumerate(METRIC_NAMES)}}}}
                for i, dice in enumerate(dice_per_case)]}


def test_share_of_the_gap_closed_matches_a_hand_computation_per_seed_and_over_seeds():
    dice = {('nnUNetTrainer', 0): [0.5, 0.6], ('nnUNetTrainer', 1): [0.4, 0.6],
            ('nnUNetTrainerDTC', 0): [0.6, 0.7], ('nnUNetTrainerDTC', 1): [0.6, 0.6],
            ('upper_bound', 0): [0.8, 0.8], ('upper_bound', 1): [0.7, 0.9]}
    runs = [BenchmarkRun(m, s, f'nnUNetTrainer_1ep_2it_s{s}' if m != 'nnUNetTrainerDTC' else
                         f'nnUNetTrainerDTC_1ep_2it_s{s}', '', 1, 'Dataset001_A') for m, s in dice]
    results = {run.key: _result(dice[run.method, run.seed]) for run in runs}
    infos = {run.key: {'epoch_seconds': {'mean': 1.0, 'std': 0.0, 'per_epoch': [1.0]}, 'parameters': 1}
             for run in runs}

    rows = {(row['method'], row['seed']): row for row in summarize_postprocessing(runs, results, infos)['rows']}

    # seed 0: (0.65 - 0.55) / (0.8 - 0.55) = 0.4; seed 1: (0.6 - 0.5) / (0.8 - 0.5) = 1/3
    expected = [(0.65 - 0.55) / (0.8 - 0.55), (0.6 - 0.5) / (0.8 - 0.5)]
    for seed, share in enumerate(expected):
        gaps = rows[('nnUNetTrainerDTC', seed)]['gap_closed']
        assert gaps['Dice'] == pytest.approx(share)
        assert gaps['HD95_mm'] == pytest.approx(share)  # every metric is a multiple of Dice here
    summary = rows[('nnUNetTrainerDTC', SEED_SUMMARY)]['gap_closed']['Dice']
    assert summary['mean'] == pytest.approx(np.mean(expected)) and summary['std'] == pytest.approx(np.std(expected))
    assert rows[('nnUNetTrainer', 0)]['gap_closed'] is None and rows[('upper_bound', 0)]['gap_closed'] is None
    cells = [line.split(' | ') for line in gap_table(list(rows.values()))[2:]]
    assert [c[1] for c in cells] == ['0', '1', SEED_SUMMARY]
    assert cells[0][2] == '40 %' and cells[2][2] == f'{100 * np.mean(expected):.0f} ± {100 * np.std(expected):.0f} %'


def test_without_an_upper_bound_there_is_no_gap():
    runs = [BenchmarkRun(m, 0, f'{m}_1ep_2it_s0', '', 1, 'Dataset001_A') for m in ('nnUNetTrainer', 'nnUNetTrainerDTC')]
    infos = {run.key: {'epoch_seconds': {'mean': 1.0, 'std': 0.0, 'per_epoch': [1.0]}, 'parameters': 1}
             for run in runs}
    rows = summarize_postprocessing(runs, {run.key: _result([0.5]) for run in runs}, infos)['rows']
    assert all(row['gap_closed'] is None for row in rows) and gap_table(rows)[2:] == []


def test_derived_datasets_are_named_for_the_benchmark_and_take_the_first_free_ids(nnunet_env):
    (nnunet_env.raw / 'Dataset994_Other').mkdir()  # the first ID after the source's is taken
    settings = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), seeds=(0, 1),
                                 upper_bound=True)
    planned = plan_training_datasets(settings, SOURCE)
    assert planned[('nnUNetTrainer', 0)] == (993, 'Dataset993_Bench')
    assert planned[('pseudo_label', 0)] == (995, 'Dataset995_Bench_dtcbench_pseudo_label_s0')
    assert planned[('pseudo_label', 1)] == (996, 'Dataset996_Bench_dtcbench_pseudo_label_s1')
    # one upper-bound dataset serves every seed
    assert planned[('upper_bound', 0)] == planned[('upper_bound', 1)] == (997, 'Dataset997_Bench_dtcbench_upper_bound')

    # a rerun finds a derived dataset by its name, wherever its ID is
    (nnunet_env.raw / 'Dataset990_Bench_dtcbench_pseudo_label_s1').mkdir()
    assert plan_training_datasets(settings, SOURCE)[('pseudo_label', 1)] == \
        (990, 'Dataset990_Bench_dtcbench_pseudo_label_s1')


def test_a_requested_derived_id_that_another_dataset_uses_is_refused_before_anything_is_written(nnunet_env):
    (nnunet_env.preprocessed / 'Dataset501_Mine').mkdir()
    settings = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), seeds=(0, 1),
                                 derived_dataset_id=500)
    with pytest.raises(BenchmarkDataError, match=r'Dataset501_Bench_dtcbench_pseudo_label_s1 would take ID 501, which '
                                                 r'is already used by Dataset501_Mine. Nothing was written'):
        plan_training_datasets(settings, SOURCE)
    assert sorted(p.name for p in nnunet_env.raw.iterdir()) == []
    ok = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), derived_dataset_id=700)
    assert plan_training_datasets(ok, SOURCE)[('pseudo_label', 0)][0] == 700


def test_a_pseudo_label_method_needs_its_teacher():
    with pytest.raises(BenchmarkSettingsError, match='dtc_pseudo_label needs nnUNetTrainerDTC'):
        BenchmarkSettings('1', '2d', trainers=('nnUNetTrainer', 'dtc_pseudo_label')).checked()
    with pytest.raises(BenchmarkSettingsError, match='upper bound: --upper_bound'):
        BenchmarkSettings('1', '2d', trainers=('upper_bound',)).checked()


def test_the_upper_bound_needs_the_split_file_and_the_sources_labels(tmp_path):
    dataset = BenchmarkDataset(993, 'Dataset993_Bench', str(tmp_path / 'ssl'), '.nii.gz', ['a'], ['t'])
    (tmp_path / 'ssl').mkdir()
    split_file = tmp_path / 'ssl' / SPLIT_RECORD_FILE_NAME
    with pytest.raises(BenchmarkDataError, match=f'{split_file} does not exist'):
        upper_bound_labels(dataset, ['u1'])
    (tmp_path / 'source' / 'labelsTr').mkdir(parents=True)
    (tmp_path / 'source' / 'labelsTr' / 'u1.nii.gz').touch()
    split_file.write_text(json.dumps({'source_folder': str(tmp_path / 'source')}))
    with pytest.raises(BenchmarkDataError, match=r'its labelsTr lacks the labels of 1 case\(s\): u2'):
        upper_bound_labels(dataset, ['u1', 'u2'])
    assert upper_bound_labels(dataset, ['u1']) == {'u1': str(tmp_path / 'source' / 'labelsTr' / 'u1.nii.gz')}


def test_derived_plans_differ_from_the_source_in_the_dataset_name_only():
    plans = {'dataset_name': 'Dataset993_Bench', 'plans_name': 'nnUNetPlans', 'configurations': {'2d': {'x': 1}}}
    derived = derived_plans(plans, 'Dataset995_Bench_dtcbench_pseudo_label_s0')
    assert {**derived, 'dataset_name': plans['dataset_name']} == plans and plans['dataset_name'] == 'Dataset993_Bench'


def test_the_gallery_shows_the_largest_gain_the_median_and_the_largest_loss():
    gains = {'c': 0.1, 'a': 0.3, 'b': -0.2, 'd': 0.0, 'e': 0.05}
    assert select_cases(gains) == [(LARGEST_GAIN, 'a'), (MEDIAN, 'e'), (LARGEST_LOSS, 'b')]
    assert select_cases({'x': 0.1}) == [(LARGEST_GAIN, 'x')]
    assert select_cases({'x': 0.1, 'y': 0.2}) == [(LARGEST_GAIN, 'y'), (LARGEST_LOSS, 'x')]
    reference = np.zeros((4, 5, 5), dtype=np.uint8)
    reference[1, :2, :2] = 1
    reference[2, :3, :3] = 2
    assert largest_reference_slice(reference) == 2 and largest_reference_slice(np.zeros((5, 2, 2))) == 2
    assert foreground_classes({'labels': {'background': 0, 'LV': 1, 'heart': [1, 2], 'ignore': 3}}) == \
        [('LV', [1]), ('heart', [1, 2])]



def test_what_the_unlabelled_images_add_is_dtc_against_its_ablation_per_seed_and_over_seeds():
    dice = {('nnUNetTrainerDTC', 0): [0.625, 0.75, 0.5], ('nnUNetTrainerDTC', 1): [0.5, 0.75, 0.75],
            ('nnUNetTrainerDTC_LabeledOnly', 0): [0.5, 0.75, 0.25],
            ('nnUNetTrainerDTC_LabeledOnly', 1): [0.625, 0.5, 0.75]}
    runs = [BenchmarkRun(m, s, f'{m}_1ep_2it_s{s}', '', 1, 'Dataset001_A') for m, s in dice]
    infos = {run.key: {'epoch_seconds': {'mean': 1.0, 'std': 0.0, 'per_epoch': [1.0]}, 'parameters': 1}
             for run in runs}
    summary = summarize_postprocessing(runs, {run.key: _result(dice[run.method, run.seed]) for run in runs}, infos)
    contribution = summary['unlabeled_contribution']

    differences = {seed: np.subtract(dice['nnUNetTrainerDTC', seed], dice['nnUNetTrainerDTC_LabeledOnly', seed])
                   for seed in (0, 1)}
    for row in contribution['per_seed']:
        d = differences[row['seed']]
        assert row['Dice']['difference']['mean'] == pytest.approx(np.mean(d))
        assert (row['Dice']['wins'], row['Dice']['losses'], row['Dice']['ties']) == \
            (np.sum(d > 0), np.sum(d < 0), np.sum(d == 0))
    over = contribution['over_seeds']['Dice']
    assert over['difference']['mean'] == pytest.approx(np.mean([np.mean(differences[s]) for s in (0, 1)]))
    assert over['difference']['std'] == pytest.approx(np.std([np.mean(differences[s]) for s in (0, 1)]))
    # seed-averaged cases: DTC 0.5625, 0.75, 0.625 against the ablation 0.5625, 0.625, 0.5
    assert (over['seed_averaged']['wins'], over['seed_averaged']['losses'], over['seed_averaged']['ties']) == (2, 0, 1)
    cells = [line.split(' | ') for line in contribution_table(contribution, [])[2:]]
    assert [c[0].strip('| ') for c in cells] == ['0', '1', SEED_SUMMARY]
    assert cells[0][1] == f'{np.mean(differences[0]):.4f} ± {np.std(differences[0]):.4f}' and cells[0][3] == '2/0/1'


def test_without_the_ablation_there_is_no_contribution_figure():
    runs = [BenchmarkRun(m, 0, f'{m}_1ep_2it_s0', '', 1, 'Dataset001_A') for m in ('nnUNetTrainer', 'nnUNetTrainerDTC')]
    infos = {run.key: {'epoch_seconds': {'mean': 1.0, 'std': 0.0, 'per_epoch': [1.0]}, 'parameters': 1}
             for run in runs}
    assert summarize_postprocessing(runs, {run.key: _result([0.5]) for run in runs}, infos)[
        'unlabeled_contribution'] is None
