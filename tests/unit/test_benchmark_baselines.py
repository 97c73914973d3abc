"""The benchmark's baselines without training: the share of the gap to the upper bound (against a hand computation),
where derived datasets go (names, IDs, refusals), the upper bound's source check, and the overlay gallery's choices."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nnunetv2_dtc.benchmark.comparison import SEED_SUMMARY, summarize_postprocessing
from nnunetv2_dtc.benchmark.data import BenchmarkDataError, BenchmarkDataset
from nnunetv2_dtc.benchmark.derived_data import derived_plans, plan_training_datasets, upper_bound_labels
from nnunetv2_dtc.benchmark.metrics import METRIC_NAMES, NO_POSTPROCESSING
from nnunetv2_dtc.benchmark.overlays import HIGHEST_DICE, LARGEST_GAIN, LARGEST_LOSS, LEGEND_INCHES, LOWEST_DICE, \
    MEDIAN, PANEL_INCHES, SINGLE_RUN_ROLES, SUPTITLE_CHARS_PER_INCH, compared_methods, crop_window, \
    foreground_classes, gallery_ordering, gallery_title, largest_reference_slice, select_cases
from nnunetv2_dtc.benchmark.plots import METHOD_INCHES, METHOD_LABEL_CHARS, PANEL_SIZE, WEIGHT_KEY, _method_labels, \
    _per_method_figure, _training_curves
from nnunetv2_dtc.benchmark.report import contribution_table, gap_table
from nnunetv2_dtc.benchmark.settings import METHODS, BenchmarkSettings, BenchmarkSettingsError
from nnunetv2_dtc.benchmark.training import RUN_RECORD_FILE, BenchmarkRun, BenchmarkRunConflict, \
    refuse_retraining_on_other_labels
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME

SOURCE = BenchmarkDataset(993, 'Dataset993_Bench', '', '.nii.gz', ['a', 'b'], ['t'])
CONFIGURATION = '3d_fullres_dtcbench_cpu_div4'


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


def _names(planned) -> dict:
    """{(method, seed): (id, name without its hash)}."""
    return {key: (dataset_id, name.rsplit('_', 1)[0] if '_dtcbench_' in name else name)
            for key, (dataset_id, name) in planned.items()}


def test_derived_datasets_are_named_for_the_benchmark_and_take_the_first_free_ids(nnunet_env):
    (nnunet_env.raw / 'Dataset994_Other').mkdir()  # the first ID after the source's is taken
    settings = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), seeds=(0, 1),
                                 upper_bound=True)
    planned = plan_training_datasets(settings, SOURCE, CONFIGURATION)
    assert _names(planned) == {
        ('nnUNetTrainer', 0): (993, 'Dataset993_Bench'), ('nnUNetTrainer', 1): (993, 'Dataset993_Bench'),
        ('pseudo_label', 0): (995, 'Dataset995_Bench_dtcbench_pseudo_label_s0'),
        ('pseudo_label', 1): (996, 'Dataset996_Bench_dtcbench_pseudo_label_s1'),
        # one upper-bound dataset serves every seed
        ('upper_bound', 0): (997, 'Dataset997_Bench_dtcbench_upper_bound'),
        ('upper_bound', 1): (997, 'Dataset997_Bench_dtcbench_upper_bound')}

    # a rerun finds a derived dataset by its name, wherever its ID is
    _, name = planned[('pseudo_label', 1)]
    (nnunet_env.raw / name.replace('Dataset996', 'Dataset990')).mkdir()
    assert plan_training_datasets(settings, SOURCE, CONFIGURATION)[('pseudo_label', 1)] == \
        (990, name.replace('Dataset996', 'Dataset990'))


def test_what_a_derived_dataset_depends_on_is_in_its_name():
    """Other source datasets (even of the same name), configurations or schedules never share a derived dataset."""
    settings = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), upper_bound=True)
    names = {}
    for source, configuration, epochs in ((SOURCE, CONFIGURATION, 1000), (SOURCE, '2d', 1000),
                                          (SOURCE, CONFIGURATION, 20),
                                          (BenchmarkDataset(992, 'Dataset992_Bench', '', '.nii.gz', ['a'], ['t']),
                                           CONFIGURATION, 1000)):
        planned = plan_training_datasets(BenchmarkSettings(**{**settings.__dict__, 'epochs': epochs}), source,
                                         configuration)
        names[(source.dataset_id, configuration, epochs)] = (planned[('pseudo_label', 0)][1].split('_', 1)[1],
                                                             planned[('upper_bound', 0)][1].split('_', 1)[1])
    pseudo = [n for n, _ in names.values()]
    assert len(set(pseudo)) == len(pseudo)
    upper = {key: n for key, (_, n) in names.items()}
    # the upper bound's data depends on the source only
    assert upper[(993, CONFIGURATION, 1000)] == upper[(993, CONFIGURATION, 20)] != upper[(992, CONFIGURATION, 1000)]


def test_a_requested_derived_id_that_another_dataset_uses_is_refused_before_anything_is_written(nnunet_env):
    (nnunet_env.preprocessed / 'Dataset501_Mine').mkdir()
    settings = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), seeds=(0, 1),
                                 derived_dataset_id=500)
    with pytest.raises(BenchmarkDataError, match=r'Dataset501_Bench_dtcbench_pseudo_label_s1_\w+ would take ID 501, '
                                                 r'which is already used by Dataset501_Mine. Nothing was written'):
        plan_training_datasets(settings, SOURCE, CONFIGURATION)
    assert sorted(p.name for p in nnunet_env.raw.iterdir()) == []
    ok = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), derived_dataset_id=700)
    assert plan_training_datasets(ok, SOURCE, CONFIGURATION)[('pseudo_label', 0)][0] == 700


def test_a_rerun_with_more_seeds_keeps_the_found_ids_and_takes_the_next_ones(nnunet_env):
    one_seed = BenchmarkSettings('993', '3d_fullres', trainers=('nnUNetTrainer', 'pseudo_label'), seeds=(0,),
                                 derived_dataset_id=500)
    _, first = plan_training_datasets(one_seed, SOURCE, CONFIGURATION)[('pseudo_label', 0)]
    (nnunet_env.raw / first).mkdir()
    two_seeds = BenchmarkSettings(**{**one_seed.__dict__, 'seeds': (0, 1), 'upper_bound': True})
    planned = plan_training_datasets(two_seeds, SOURCE, CONFIGURATION)
    assert planned[('pseudo_label', 0)] == (500, first)
    assert planned[('pseudo_label', 1)][0] == 501 and planned[('upper_bound', 0)][0] == 502


def test_a_pseudo_label_method_needs_its_teacher():
    with pytest.raises(BenchmarkSettingsError, match='dtc_pseudo_label needs nnUNetTrainerDTC'):
        BenchmarkSettings('1', '2d', trainers=('nnUNetTrainer', 'dtc_pseudo_label')).checked()
    with pytest.raises(BenchmarkSettingsError, match='upper bound: --upper_bound'):
        BenchmarkSettings('1', '2d', trainers=('upper_bound',)).checked()


def test_the_upper_bound_needs_the_split_file_and_the_sources_labels(tmp_path, monkeypatch):
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
    labels, source = upper_bound_labels(dataset, ['u1'])
    assert labels == {'u1': str(tmp_path / 'source' / 'labelsTr' / 'u1.nii.gz')}
    assert source['source_folder'] == str(tmp_path / 'source') and source['split_file'] == str(split_file)
    # a moved source is looked up in nnUNet_raw by its name; a changed split record changes the source
    split_file.write_text(json.dumps({'source_folder': str(tmp_path / 'gone'), 'source_dataset': 'source'}))
    monkeypatch.setenv('nnUNet_raw', str(tmp_path))
    moved_labels, moved_source = upper_bound_labels(dataset, ['u1'])
    assert moved_labels == labels and moved_source['split_record'] != source['split_record']


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



def test_the_gallery_title_wraps_a_long_method_name_within_the_legend_margins():
    long_name = METHODS['nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30'].name
    title = gallery_title(0, long_name, METHODS['nnUNetTrainer'].name, 4 * PANEL_INCHES)
    fitting = int(SUPTITLE_CHARS_PER_INCH * (4 * PANEL_INCHES - 2 * LEGEND_INCHES))
    assert len(title.splitlines()) == 2 and all(len(line) <= fitting for line in title.splitlines())
    assert ' '.join(title.split()) == f'Seed 0: test cases by per-case foreground Dice of {long_name} minus ' \
                                     f'nnU-Net (labelled only)'
    assert gallery_title(1, 'DTC (labelled + unlabelled)', 'nnU-Net (labelled only)', 4 * PANEL_INCHES).splitlines() \
        == ['Seed 1: test cases by per-case foreground Dice of DTC (labelled + unlabelled) minus',
            'nnU-Net (labelled only)']


def test_method_axis_labels_wrap_at_spaces_and_the_panel_widens_with_the_methods():
    methods = ['nnUNetTrainer', 'nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30_LabeledOnly']
    labels = _method_labels(methods)
    assert labels[0] == 'nnU-Net\n(labelled only)'
    assert all(len(line) <= METHOD_LABEL_CHARS for label in labels for line in label.splitlines())
    assert ' '.join(labels[1].split()) == METHODS[methods[1]].name
    eight = [BenchmarkRun(m, 0, f'{m}_t', '/r', 1, 'Dataset001_X') for m in list(METHODS)[:8]]
    figure, axes = _per_method_figure(eight, 2)
    assert figure.get_size_inches()[0] == pytest.approx(2 * 8 * METHOD_INCHES) and axes.shape == (1, 2)
    plt.close(figure)
    figure, _ = _per_method_figure(eight[:3], 1)
    assert figure.get_size_inches()[0] == pytest.approx(PANEL_SIZE[0])
    plt.close(figure)


def test_training_curve_legends_sit_under_their_axes_with_every_term():
    """A DTC run's consistency weight climbs to 1 at the top right of its panel on a twin axis; the legend (six terms)
    must not cover any of the plot area."""
    epochs = np.arange(60)
    ramp = np.exp(-5 * (1 - epochs / 59) ** 2)
    curves = {'train_losses': 0.6 - 1.4 * ramp, 'val_losses': 0.5 - 1.4 * ramp, 'dtc_supervised_losses': 0.6 - ramp,
              'dtc_sdf_losses': np.full(60, 0.04), 'dtc_consistency_losses': np.full(60, 0.002), WEIGHT_KEY: ramp}
    runs = [BenchmarkRun(m, 0, f'{m}_t', '/r', 1, 'Dataset001_X') for m in ('nnUNetTrainer', 'nnUNetTrainerDTC')]
    infos = {runs[0].key: {'curves': {k: curves[k] for k in ('train_losses', 'val_losses')}},
             runs[1].key: {'curves': curves}}
    figure = _training_curves(runs, infos)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for ax, terms in zip(figure.axes, (2, 6)):
        legend = ax.get_legend()
        assert len(legend.get_texts()) == terms
        assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0
    plt.close(figure)


def test_the_gallery_orders_by_the_dtc_method_that_sees_the_unlabelled_images_not_its_ablation():
    def runs(*methods):
        return [BenchmarkRun(method, 0, f'{method}_t', f'/results/{method}', 1, 'Dataset001_X') for method in methods]

    variant, ablation = 'nnUNetTrainerDTC_LevelSetTeacher', 'nnUNetTrainerDTC_LevelSetTeacher_LabeledOnly'
    chosen = compared_methods(runs('nnUNetTrainer', variant, ablation))
    assert [run.method for run in chosen] == [variant, 'nnUNetTrainer']
    chosen = compared_methods(runs('nnUNetTrainer', 'nnUNetTrainerDTC_LabeledOnly', 'nnUNetTrainerDTC', variant))
    assert [run.method for run in chosen] == ['nnUNetTrainerDTC', 'nnUNetTrainer']
    chosen = compared_methods(runs('nnUNetTrainer', 'pseudo_label'))
    assert [run.method for run in chosen] == ['pseudo_label', 'nnUNetTrainer']
    chosen = compared_methods(runs('nnUNetTrainerDTC_LabeledOnly', ablation))
    assert [run.method for run in chosen] == [ablation, 'nnUNetTrainerDTC_LabeledOnly']
    chosen = compared_methods(runs('nnUNetTrainer'))  # a run alone is its own baseline: gallery_ordering below
    assert [run.method for run in chosen] == ['nnUNetTrainer', 'nnUNetTrainer']


def test_a_run_alone_in_its_seed_is_shown_by_its_own_dice_not_against_itself():
    vanilla, alone = (BenchmarkRun(method, 0, f'{method}_t', f'/results/{method}', 1, 'Dataset001_X')
                      for method in ('nnUNetTrainer', 'nnUNetTrainerDTC_EMATeacher'))
    dice = {alone.key: {'a': 0.7, 'b': 0.9, 'c': None, 'd': 0.8}, vanilla.key: {'a': 0.8, 'b': 0.6, 'c': 0.5, 'd': 0.8}}
    method, baseline, ordering = gallery_ordering([alone], dice)
    assert (method, baseline) == (alone, None) and ordering == {'a': 0.7, 'b': 0.9, 'd': 0.8}
    assert select_cases(ordering, SINGLE_RUN_ROLES) == [(HIGHEST_DICE, 'b'), (MEDIAN, 'd'), (LOWEST_DICE, 'a')]
    assert gallery_title(0, 'DTC', None, 4 * PANEL_INCHES) == 'Seed 0: test cases by per-case foreground Dice of DTC'
    method, baseline, ordering = gallery_ordering([vanilla, alone], dice)
    assert (method, baseline) == (alone, vanilla) and ordering == pytest.approx({'a': -0.1, 'b': 0.3, 'd': 0.0})


def test_what_the_unlabelled_images_add_is_dtc_against_its_ablation_per_seed_and_over_seeds():
    dice = {('nnUNetTrainerDTC', 0): [0.625, 0.75, 0.5], ('nnUNetTrainerDTC', 1): [0.5, 0.75, 0.75],
            ('nnUNetTrainerDTC_LabeledOnly', 0): [0.5, 0.75, 0.25],
            ('nnUNetTrainerDTC_LabeledOnly', 1): [0.625, 0.5, 0.75]}
    runs = [BenchmarkRun(m, s, f'{m}_1ep_2it_s{s}', '', 1, 'Dataset001_A') for m, s in dice]
    infos = {run.key: {'epoch_seconds': {'mean': 1.0, 'std': 0.0, 'per_epoch': [1.0]}, 'parameters': 1}
             for run in runs}
    summary = summarize_postprocessing(runs, {run.key: _result(dice[run.method, run.seed]) for run in runs}, infos)
    assert list(summary['unlabeled_contribution']) == ['nnUNetTrainerDTC']
    contribution = summary['unlabeled_contribution']['nnUNetTrainerDTC']
    assert contribution['ablation'] == 'nnUNetTrainerDTC_LabeledOnly'

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


def test_a_student_trained_on_other_pseudo_labels_is_refused_before_its_dataset_is_touched(tmp_path):
    run = BenchmarkRun('pseudo_label', 0, 'nnUNetTrainer_1ep_2it_s0', str(tmp_path / 'model'), 995, 'Dataset995_X')
    refuse_retraining_on_other_labels(run, {'checkpoint': 'teacher.pth', 'checkpoint_mtime_ns': 1})  # untrained
    (tmp_path / 'model' / 'fold_all').mkdir(parents=True)
    (tmp_path / 'model' / 'fold_all' / RUN_RECORD_FILE).write_text(json.dumps(
        {'training': {'pseudo_labels': {'checkpoint': 'teacher.pth', 'checkpoint_mtime_ns': 1}}}))
    refuse_retraining_on_other_labels(run, {'checkpoint': 'teacher.pth', 'checkpoint_mtime_ns': 1})
    with pytest.raises(BenchmarkRunConflict, match='trained on pseudo-labels of another teacher checkpoint'):
        refuse_retraining_on_other_labels(run, {'checkpoint': 'teacher.pth', 'checkpoint_mtime_ns': 2})


def test_the_gallery_crops_to_the_foreground_of_every_segmentation_with_a_margin():
    reference, prediction = np.zeros((100, 80), dtype=np.uint8), np.zeros((100, 80), dtype=np.uint8)
    reference[40:50, 30:40] = 1
    prediction[45:60, 35:38] = 2
    rows, columns = crop_window([reference, prediction])
    assert (rows.start, rows.stop) == (40 - 8, 60 + 8) and (columns.start, columns.stop) == (30 - 8, 40 + 8)
    assert crop_window([np.zeros((5, 5))]) == (slice(None), slice(None))


def test_each_dtc_variant_is_paired_with_its_own_ablation():
    dice = {'nnUNetTrainerDTC': [0.75, 0.5], 'nnUNetTrainerDTC_LabeledOnly': [0.5, 0.5],
            'nnUNetTrainerDTC_MaskedSDF': [0.5, 0.25], 'nnUNetTrainerDTC_MaskedSDF_LabeledOnly': [0.75, 0.5],
            'nnUNetTrainerDTC_MoreUnlabeled': [1.0, 0.75], 'nnUNetTrainerDTC_DiceOnly': [0.5, 0.5]}
    runs = [BenchmarkRun(m, 0, f'{m}_1ep_2it_s0', '', 1, 'Dataset001_A') for m in dice]
    infos = {run.key: {'epoch_seconds': {'mean': 1.0, 'std': 0.0, 'per_epoch': [1.0]}, 'parameters': 1}
             for run in runs}
    contributions = summarize_postprocessing(runs, {run.key: _result(dice[run.method]) for run in runs}, infos)[
        'unlabeled_contribution']
    # DiceOnly ran without its ablation: no figure for it
    assert {m: c['ablation'] for m, c in contributions.items()} == {
        'nnUNetTrainerDTC': 'nnUNetTrainerDTC_LabeledOnly',
        'nnUNetTrainerDTC_MaskedSDF': 'nnUNetTrainerDTC_MaskedSDF_LabeledOnly',
        'nnUNetTrainerDTC_MoreUnlabeled': 'nnUNetTrainerDTC_LabeledOnly'}
    for method, contribution in contributions.items():
        expected = np.mean(np.subtract(dice[method], dice[contribution['ablation']]))
        assert contribution['per_seed'][0]['Dice']['difference']['mean'] == pytest.approx(expected)


def test_disagreement_validation_is_spearman_of_score_against_dice_error(tmp_path):
    from scipy.stats import spearmanr

    from nnunetv2_dtc.benchmark.disagreement import disagreement_validation, has_auxiliary_task
    dice = [0.9, 0.5, 0.7, 0.2]
    scores = [0.1, 0.3, 0.35, 0.2]
    csv_file = tmp_path / 'annotation_priority.csv'
    csv_file.write_text('case,score\n' + ''.join(f'case{i},{s}\n' for i, s in enumerate(scores)))
    runs = [BenchmarkRun('nnUNetTrainerDTC', 0, 'nnUNetTrainerDTC_1ep_2it_s0', '', 1, 'Dataset001_A'),
            BenchmarkRun('nnUNetTrainer', 0, 'nnUNetTrainer_1ep_2it_s0', '', 1, 'Dataset001_A')]
    rows = disagreement_validation(runs, {runs[0].key: str(csv_file)}, {run.key: _result(dice) for run in runs})
    expected = spearmanr(scores, [1 - d for d in dice])
    assert rows == [{'key': runs[0].key, 'method': 'nnUNetTrainerDTC', 'seed': 0, 'n_cases': 4,
                     'spearman_rho': pytest.approx(expected.statistic), 'p_value': pytest.approx(expected.pvalue)}]
    assert has_auxiliary_task('nnUNetTrainerDTC_LabeledOnly') and has_auxiliary_task('nnUNetTrainerDTCBoundary')
    assert not has_auxiliary_task('nnUNetTrainer') and not has_auxiliary_task('pseudo_label')


def test_a_preprocessed_voxel_has_the_configurations_spacing_and_in_2d_the_cases_slice_spacing():
    from nnunetv2_dtc.annotation.rank_unlabeled import voxel_volume_mm3
    assert voxel_volume_mm3([2.0, 1.0, 1.5], [3.0, 0.5, 0.5]) == 3.0
    assert voxel_volume_mm3([1.5, 1.5], [10.0, 1.2, 1.2]) == 22.5
