"""nnUNetv2_dtc_compare_reports: runs kept in two reports' per_case.csv, paired, give exactly the numbers the benchmark
gives when both runs are in one report; runs that are not the same or not comparable are refused by name."""
import math

import numpy as np
import pytest

from nnunetv2_dtc.benchmark.compare_reports import ReportTableError, collect_runs, compare_reports_entry, \
    compare_runs, default_baseline
from nnunetv2_dtc.benchmark.comparison import TABLE_METRICS, unlabeled_contribution, with_foreground
from nnunetv2_dtc.benchmark.metrics import HD95_MM, METRIC_NAMES, NO_POSTPROCESSING
from nnunetv2_dtc.benchmark.per_case_table import PER_CASE_CSV, per_case_csv
from nnunetv2_dtc.benchmark.training import BenchmarkRun

VANILLA, DTC, ABLATION = 'nnUNetTrainer', 'nnUNetTrainerDTC', 'nnUNetTrainerDTC_LabeledOnly'
SEEDS = (0, 1)
NUM_CASES = 12


def _runs(methods=(VANILLA, DTC, ABLATION)):
    return [BenchmarkRun(method, seed, f'{method}_1ep_2it_s{seed}', '', 1, 'Dataset001_A')
            for method in methods for seed in SEEDS]


def _results(runs, seed=0) -> dict:
    """folder_metrics results of two classes with values that are not short decimals (a rounded copy would differ)
    and one undefined distance."""
    rng = np.random.default_rng(seed)
    results = {}
    for run in runs:
        cases = [{'case_id': f'case{i:02d}', 'metrics': {
            key: {'status': 'ok', **{metric: float(rng.uniform(0.5, 0.9) if metric in ('Dice', 'IoU')
                                                    else rng.uniform(1, 5)) for metric in METRIC_NAMES}}
            for key in ('1', '2')}} for i in range(NUM_CASES)]
        cases[3]['metrics']['2'][HD95_MM] = None
        results[run.key] = {'postprocessing': NO_POSTPROCESSING, 'labels_or_regions': ['1', '2'],
                            'metric_per_case': cases}
    return results


def _write_report(folder, runs, results) -> str:
    folder.mkdir()
    (folder / PER_CASE_CSV).write_text(per_case_csv(runs, {NO_POSTPROCESSING: results}))
    return str(folder)


def test_two_reports_paired_give_the_numbers_of_one_report_holding_both(tmp_path):
    runs = _runs()
    results = _results(runs)
    # one session trained nnU-Net and DTC, another nnU-Net (the same run, reused) and the ablation
    first = _write_report(tmp_path / 'first', [r for r in runs if r.method != ABLATION], results)
    second = _write_report(tmp_path / 'second', [r for r in runs if r.method != DTC], results)

    compared = compare_runs(collect_runs([first, second]), DTC, default_baseline(DTC))
    in_one_report = unlabeled_contribution(runs, {key: with_foreground(r) for key, r in results.items()})[DTC]
    assert compared['seeds'] == list(SEEDS) and compared['baseline'] == ABLATION
    assert [{'seed': row['seed'], **{m: row[m] for m in TABLE_METRICS}} for row in in_one_report['per_seed']] == \
        compared['per_seed']
    assert {m: in_one_report['over_seeds'][m] for m in TABLE_METRICS} == compared['over_seeds']
    assert [run.source for run in compared['runs']['baseline']] == [f'{second}/{PER_CASE_CSV}'] * 2
    dtc_dice = [np.mean([np.mean([c['metrics'][k]['Dice'] for k in ('1', '2')])
                         for c in results[f'{DTC}_1ep_2it_s{seed}']['metric_per_case']]) for seed in SEEDS]
    assert compared['means']['method']['Dice'] == pytest.approx(dtc_dice, abs=1e-15)


def test_the_markdown_shows_each_run_and_a_t_test_of_the_seed_differences(tmp_path, capsys):
    runs = _runs((DTC, ABLATION))
    results = _results(runs)
    # per-seed mean Dice differences 0.125 and 0.375: t = 0.25 / (0.25 / sqrt(2) / sqrt(2)) = 2 with 1 degree of
    # freedom (a Cauchy distribution), so p = 1 - 2 arctan(2) / pi
    for run in runs:
        shift = {(DTC, 0): 0.125, (DTC, 1): 0.375}.get((run.method, run.seed), 0.0)
        for case, reference in zip(results[run.key]['metric_per_case'],
                                   results[f'{ABLATION}_1ep_2it_s{run.seed}']['metric_per_case']):
            for key in ('1', '2'):
                case['metrics'][key]['Dice'] = reference['metrics'][key]['Dice'] + shift
    report = _write_report(tmp_path / 'report', runs, results)

    compare_reports_entry([report, '--method', DTC])
    printed = capsys.readouterr().out
    assert f'| 0 | `{DTC}_1ep_2it_s0` | {report}/{PER_CASE_CSV} |' in printed
    rows = _result_rows(printed)
    assert [row[0] for row in rows] == ['0', '1', 'mean over seeds']
    assert rows[1][3:6] == ['0.3750 ± 0.0000', '0.0005', f'{NUM_CASES}/0/0']
    assert rows[2][3] == '0.2500 ± 0.1250'
    assert f'Dice p = {1 - 2 * math.atan(2) / math.pi:.4f}' in printed
    assert 'different schedules' not in printed


def _result_rows(printed: str) -> list:
    """The cells of the rows of the results table (the one whose header starts with '| Seed | Dice')."""
    table = printed.split('| Seed | Dice', 1)[1].split('\n\n', 1)[0]
    return [[cell.strip() for cell in line.strip('|').split('|')] for line in table.splitlines()[2:]]


def test_post_processings_stay_apart_and_other_schedules_get_a_note(tmp_path, capsys):
    runs = _runs((DTC, ABLATION))
    as_predicted, post_processed = _results(runs, seed=0), _results(runs, seed=1)
    for result in post_processed.values():
        result['postprocessing'] = 'largest_component'
    longer = BenchmarkRun(ABLATION, 0, f'{ABLATION}_2ep_2it_s0', '', 1, 'Dataset001_A')
    folder = tmp_path / 'report'
    folder.mkdir()
    (folder / PER_CASE_CSV).write_text(per_case_csv(
        [runs[0], longer], {NO_POSTPROCESSING: {runs[0].key: as_predicted[runs[0].key], longer.key:
                                                as_predicted[runs[2].key]},
                            'largest_component': {runs[0].key: post_processed[runs[0].key],
                                                  longer.key: post_processed[runs[2].key]}}))

    compare_reports_entry([str(folder), '--method', DTC, '--postprocessing', 'largest_component'])
    printed = capsys.readouterr().out
    expected = np.mean([np.mean([c['metrics'][k]['Dice'] for k in ('1', '2')])
                        for c in post_processed[runs[0].key]['metric_per_case']])
    assert _result_rows(printed)[0][1] == f'{expected:.4f}'
    assert 'post-processing largest_component' in printed
    assert 'Note: the runs have different schedules (1ep_2it, 2ep_2it).' in printed
    assert 'over seeds' not in printed and 't-test' not in printed


def test_a_metric_without_paired_cases_in_a_seed_has_no_t_test(tmp_path):
    runs = _runs((DTC, ABLATION))
    results = _results(runs)
    for case in results[f'{DTC}_1ep_2it_s1']['metric_per_case']:
        case['metrics']['1'][HD95_MM] = None  # e.g. class 1 never predicted
    compared = compare_runs(collect_runs([_write_report(tmp_path / 'report', runs, results)]), DTC, ABLATION)
    assert compared['per_seed'][1][HD95_MM]['n_paired'] == 0
    assert compared['t_test'][HD95_MM] == {'p_value': None, 'reason': 'fewer than 2 values (1)'}
    assert compared['t_test']['Dice']['p_value'] is not None


def test_a_run_with_other_values_in_a_second_report_is_refused_by_name(tmp_path):
    runs = _runs((DTC, ABLATION))
    first = _write_report(tmp_path / 'first', runs, _results(runs, seed=0))
    second = _write_report(tmp_path / 'second', runs, _results(runs, seed=1))
    with pytest.raises(ReportTableError, match=f'{DTC} seed 0 \\(none\\) has different values in {first}/'
                                               f'{PER_CASE_CSV} and {second}/{PER_CASE_CSV}'):
        collect_runs([first, second])


def test_runs_of_other_test_cases_or_missing_runs_are_refused(tmp_path):
    runs = _runs((DTC, ABLATION))
    results = _results(runs)
    for case in results[f'{ABLATION}_1ep_2it_s1']['metric_per_case']:
        case['case_id'] = 'other_' + case['case_id']
    stored = collect_runs([_write_report(tmp_path / 'report', runs, results)])
    with pytest.raises(ReportTableError, match=f'{ABLATION}_1ep_2it_s1 \\(.*\\) and {DTC}_1ep_2it_s0 \\(.*\\) scored '
                                               f'different test cases or classes'):
        compare_runs(stored, DTC, ABLATION)
    assert compare_runs(stored, DTC, ABLATION, seeds=[0])['seeds'] == [0]
    with pytest.raises(ReportTableError, match='--seeds 0 0 names a seed twice'):
        compare_runs(stored, DTC, ABLATION, seeds=[0, 0])
    with pytest.raises(ReportTableError, match=f'No runs of {VANILLA} seed 0, {VANILLA} seed 1 .*they hold 4 run'):
        compare_runs(stored, DTC, VANILLA, seeds=list(SEEDS))
    with pytest.raises(ReportTableError, match=f'No runs of {DTC} and {VANILLA} with a common seed'):
        compare_runs(stored, DTC, VANILLA)


def test_bad_input_names_the_file_and_the_fix(tmp_path, capsys):
    with pytest.raises(ReportTableError, match=f'{tmp_path}/{PER_CASE_CSV} does not exist. Pass a benchmark report'):
        collect_runs([str(tmp_path)])
    edited = tmp_path / 'edited.csv'
    edited.write_text('method,seed,Dice\nnnUNetTrainerDTC,0,0.8\n')
    with pytest.raises(ReportTableError, match=f'{edited}: columns .* expected'):
        collect_runs([str(edited)])
    runs = _runs((DTC,))
    text = per_case_csv(runs, {NO_POSTPROCESSING: _results(runs)})
    edited.write_text(text.replace(',case00,1,', ',case00,1,high', 1))
    with pytest.raises(ReportTableError, match=f'{edited}, line 2: could not convert'):
        collect_runs([str(edited)])
    edited.write_text('\n'.join(line for line in text.splitlines() if ',case05,2,' not in line))
    with pytest.raises(ReportTableError, match=f'{edited}: {DTC} seed 0 \\(none\\) lacks classes of '
                                               f'1 case\\(s\\): case05'):
        collect_runs([str(edited)])
    with pytest.raises(SystemExit) as exit_info:
        compare_reports_entry([str(tmp_path), '--method', VANILLA])
    assert exit_info.value.code == 2
    assert 'nnUNetv2_dtc_compare_reports: error: nnUNetTrainer has no labelled-only ablation' in \
        capsys.readouterr().err
