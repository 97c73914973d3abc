"""nnUNetv2_dtc_compare_reports: pairs a method with a baseline case by case from the per_case.csv of benchmark
reports, with the numbers and tests the benchmark's headline table uses (per seed, then over seeds).

Within one report the benchmark pairs its own runs; this pairs runs that were trained in different sessions or on
different machines, each kept as a report folder: e.g. a DTC variant trained today and its labelled-only ablation
trained tomorrow on the same split. Only the per-case values travel, so both reports must score the same test cases.
"""
import argparse
import csv
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from nnunetv2_dtc.benchmark.comparison import FOREGROUND, SEED_SUMMARY, TABLE_METRICS, case_values, paired_over_seeds
from nnunetv2_dtc.benchmark.metrics import DICE, HD95_MM, LARGEST_COMPONENT, NO_POSTPROCESSING, summarize
from nnunetv2_dtc.benchmark.per_case_table import CSV_COLUMNS, PER_CASE_CSV
from nnunetv2_dtc.benchmark.report import DECIMALS, METRIC_HEADERS, MISSING, contribution_cells, markdown_table, \
    mean_std, p_value
from nnunetv2_dtc.benchmark.settings import METHODS
from nnunetv2_dtc.benchmark.statistics import PairedStatisticsError, one_sample_t_test
from nnunetv2_dtc.utilities.cli import exit_with_error, shown

COMMAND = 'nnUNetv2_dtc_compare_reports'
SHOWN_METRICS = (DICE, HD95_MM)  # the benchmark's headline table shows these two
RunKey = Tuple[str, int, str]  # (method, seed, post-processing)


class ReportTableError(ValueError):
    """A per_case.csv that cannot be read or paired; the message names the file and the fix."""


class StoredRun(NamedTuple):
    trainer: str  # with its schedule, e.g. nnUNetTrainerDTC_60ep_50it_s0
    source: str  # the per_case.csv it was read from
    result: dict  # metrics.folder_metrics' layout for TABLE_METRICS, the FOREGROUND class included


def per_case_csv_path(path: str) -> str:
    """The per_case.csv of a report folder, or the file itself."""
    file = os.path.join(path, PER_CASE_CSV) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ReportTableError(f'{file} does not exist. Pass a benchmark report folder (--out of '
                               f'nnUNetv2_dtc_benchmark) or its {PER_CASE_CSV}; a report written before the benchmark '
                               f'wrote {PER_CASE_CSV} gets one when its benchmark command is run again where its '
                               f'trained models still are (it resumes and only predicts and scores).')
    return file


def read_per_case_csv(path: str) -> Dict[RunKey, StoredRun]:
    """Every run of one per_case.csv, keyed by (method, seed, post-processing)."""
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ReportTableError(f'{path}: columns {reader.fieldnames}, expected {list(CSV_COLUMNS)}. Pass the '
                                   f'{PER_CASE_CSV} nnUNetv2_dtc_benchmark wrote.')
        grouped: Dict[RunKey, dict] = {}
        for line, row in enumerate(reader, start=2):
            try:
                key = (row['method'], int(row['seed']), row['postprocessing'])
                values = {m: None if row[m] == '' else float(row[m]) for m in TABLE_METRICS}
            except (TypeError, ValueError) as error:
                raise ReportTableError(f'{path}, line {line}: {error}. Pass the {PER_CASE_CSV} nnUNetv2_dtc_benchmark '
                                       f'wrote, unedited.') from None
            run = grouped.setdefault(key, {'trainer': row['trainer'], 'classes': [], 'cases': {}})
            if row['class'] not in run['classes']:
                run['classes'].append(row['class'])
            run['cases'].setdefault(row['case_id'], {})[row['class']] = values
    return {key: StoredRun(run['trainer'], path, _folder_metrics_layout(path, key, run))
            for key, run in grouped.items()}


def _folder_metrics_layout(path: str, key: RunKey, run: dict) -> dict:
    incomplete = [case for case, classes in run['cases'].items() if set(classes) != set(run['classes'])]
    if incomplete or FOREGROUND not in run['classes']:
        raise ReportTableError(f'{path}: {key[0]} seed {key[1]} ({key[2]}) lacks classes of '
                               f'{shown(incomplete) if incomplete else "every case (no foreground rows)"}. Pass the '
                               f'{PER_CASE_CSV} nnUNetv2_dtc_benchmark wrote, unedited.')
    return {'postprocessing': key[2], 'labels_or_regions': run['classes'],
            'metric_per_case': [{'case_id': case, 'metrics': run['cases'][case]} for case in sorted(run['cases'])]}


def collect_runs(paths: Sequence[str]) -> Dict[RunKey, StoredRun]:
    """The runs of several reports. A run found in two reports (reused through the benchmark's resume) must have the
    same values in both; two different runs of one method and seed are refused."""
    runs: Dict[RunKey, StoredRun] = {}
    for path in paths:
        for key, run in read_per_case_csv(per_case_csv_path(path)).items():
            known = runs.setdefault(key, run)
            if known.result != run.result:
                raise ReportTableError(f'{key[0]} seed {key[1]} ({key[2]}) has different values in {known.source} '
                                       f'and {run.source}: two different runs of it (trained again, e.g. on another '
                                       f'machine), or one file rounded (the first per_case.csv files had 6 '
                                       f'significant digits). Pass only the report whose run you mean.')
    return runs


def compare_runs(runs: Dict[RunKey, StoredRun], method: str, baseline: str, seeds: Optional[Sequence[int]] = None,
                 postprocessing: str = NO_POSTPROCESSING) -> dict:
    """The benchmark's paired comparison (comparison.paired_over_seeds) of `method` against `baseline` with the same
    seed, for `seeds` (default: every seed both have), plus each run's test means and a one-sample t-test of the
    per-seed mean differences: {'method', 'baseline', 'postprocessing', 'seeds', 'runs': {side: [StoredRun per
    seed]}, 'means': {side: {metric: [per-seed mean]}}, 'per_seed', 'over_seeds', 't_test': {metric: ...}}."""
    def seeds_of(name: str) -> List[int]:
        return sorted(seed for m, seed, p in runs if m == name and p == postprocessing)

    if seeds is None:
        seeds = [seed for seed in seeds_of(method) if seed in seeds_of(baseline)]
    if len(set(seeds)) != len(seeds):
        raise ReportTableError(f'--seeds {" ".join(map(str, seeds))} names a seed twice. Name each seed once.')
    sources = sorted({run.source for run in runs.values()})
    missing = [f'{name} seed {seed}' for name in (method, baseline) for seed in seeds
               if (name, seed, postprocessing) not in runs]
    if missing or not seeds:
        found = sorted({f'{m} seed {s}' for m, s, p in runs if p == postprocessing})
        raise ReportTableError(f'No runs of {", ".join(missing) or f"{method} and {baseline} with a common seed"} '
                               f'({postprocessing}) in {", ".join(sources)}; they hold {shown(found, "run(s)")}. Pass '
                               f'the report of each run, or choose --seeds.')
    sides = {'method': method, 'baseline': baseline}
    stored = {side: [runs[(name, seed, postprocessing)] for seed in seeds] for side, name in sides.items()}
    _check_same_cases(stored['method'][0], [run for side in sides for run in stored[side]])
    results = {f'{side} {seed}': run.result for side in sides for seed, run in zip(seeds, stored[side])}
    try:
        paired = paired_over_seeds(results, [f'method {s}' for s in seeds], [f'baseline {s}' for s in seeds], seeds,
                                   TABLE_METRICS)
    except PairedStatisticsError as error:
        raise ReportTableError(f'{method} and {baseline} ({", ".join(sources)}) cannot be paired: {error}') from None
    return {'method': method, 'baseline': baseline, 'postprocessing': postprocessing, 'seeds': list(seeds),
            'runs': stored,
            'means': {side: {metric: [summarize(case_values(run.result, FOREGROUND, metric))['mean']
                                      for run in stored[side]] for metric in TABLE_METRICS} for side in sides},
            **paired,
            't_test': {metric: one_sample_t_test([row[metric]['difference']['mean'] for row in paired['per_seed']])
                       for metric in SHOWN_METRICS}}


def _check_same_cases(first: StoredRun, others: Sequence[StoredRun]) -> None:
    """Every run scored the same test cases and classes: runs of another dataset or split cannot be paired or
    averaged over seeds."""
    def cases(run: StoredRun) -> Tuple[List[str], List[str]]:
        return [case['case_id'] for case in run.result['metric_per_case']], run.result['labels_or_regions']

    for other in others:
        if cases(other) != cases(first):
            raise ReportTableError(f'{other.trainer} ({other.source}) and {first.trainer} ({first.source}) scored '
                                   f'different test cases or classes. Pair runs of the same dataset and split '
                                   f'(nnUNetv2_dtc_make_ssl_dataset with the same arguments and --seed).')


def default_baseline(method: str) -> str:
    """A DTC method's labelled-only ablation, the benchmark's headline baseline."""
    ablation = METHODS[method].ablation if method in METHODS else None
    if ablation is None:
        raise ReportTableError(f'{method} has no labelled-only ablation the benchmark knows. Name the baseline with '
                               f'--baseline (e.g. nnUNetTrainer).')
    return ablation


def comparison_markdown(comparison: dict) -> str:
    """The comparison as benchmark.md would show it, with the runs, their sources and test means."""
    method, baseline = comparison['method'], comparison['baseline']
    n_cases = len(comparison['runs']['method'][0].result['metric_per_case'])
    lines = [f'{method} − {baseline}, paired per test case ({n_cases} cases, post-processing '
             f'{comparison["postprocessing"]}, each case\'s mean over the foreground classes):',
             '', *markdown_table(['Seed', 'Run', 'From'],
                                 [[str(seed), f'`{run.trainer}`', run.source] for side in ('method', 'baseline')
                                  for seed, run in zip(comparison['seeds'], comparison['runs'][side])])]
    schedules = {_schedule(run, seed) for side in ('method', 'baseline')
                 for seed, run in zip(comparison['seeds'], comparison['runs'][side])}
    if len(schedules) > 1:
        lines += ['', f'Note: the runs have different schedules ({", ".join(sorted(schedules))}).']
    cells = [[str(seed), *[f'{comparison["means"][side][DICE][i]:.{DECIMALS[DICE]}f}'
                           for side in ('method', 'baseline')],
              *[cell for metric in SHOWN_METRICS for cell in contribution_cells(row[metric], metric)]]
             for i, (seed, row) in enumerate(zip(comparison['seeds'], comparison['per_seed']))]
    if len(comparison['seeds']) > 1:
        over = comparison['over_seeds']
        cells.append([SEED_SUMMARY, *[mean_std(summarize(comparison['means'][side][DICE]), DECIMALS[DICE])
                                      for side in ('method', 'baseline')],
                      *[cell for metric in SHOWN_METRICS for cell in contribution_cells(
                          {**over[metric]['seed_averaged'], 'difference': over[metric]['difference']}, metric)]])
    lines += ['', *markdown_table(['Seed', f'Dice {method}', f'Dice {baseline}', 'Dice difference', 'p (Dice)',
                                   'W/L/T (Dice)', 'HD95 difference (mm)', 'p (HD95)', 'W/L/T (HD95)'], cells), '',
              'Differences: mean ± std over the test cases' + (
                  '; over seeds, mean ± std of the per-seed mean differences, with p and W/L/T of the per-case values '
                  'averaged over seeds' if len(comparison['seeds']) > 1 else '') +
              '. p: two-sided Wilcoxon signed-rank test.']
    if len(comparison['seeds']) > 1:
        tests = [f'{METRIC_HEADERS[metric]} p = {_t_test_cell(comparison["t_test"][metric])}'
                 for metric in SHOWN_METRICS]
        lines += ['', f'One-sample t-test of the {len(comparison["seeds"])} per-seed mean differences: '
                      f'{"; ".join(tests)}.']
    return '\n'.join(lines) + '\n'


def _t_test_cell(test: dict) -> str:
    return p_value(test['p_value']) if test['p_value'] is not None else f'{MISSING} ({test["reason"]})'


def _schedule(run: StoredRun, seed: int) -> str:
    """'60ep_50it' from a benchmark trainer name such as nnUNetTrainerDTC_60ep_50it_s0."""
    parts = run.trainer.split('_')
    return '_'.join(parts[-3:-1]) if len(parts) >= 3 and parts[-1] == f's{seed}' else run.trainer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description='Pairs a method with a baseline case by case from the per_case.csv of one or more '
                    'nnUNetv2_dtc_benchmark reports (e.g. a DTC variant and its labelled-only ablation trained in '
                    'different sessions on the same split), per seed and over seeds, as the benchmark\'s headline '
                    'table does, and prints the result as markdown.')
    parser.add_argument('reports', nargs='+', metavar='REPORT',
                        help=f'Benchmark report folders (--out of nnUNetv2_dtc_benchmark) or their {PER_CASE_CSV}.')
    parser.add_argument('--method', required=True, metavar='METHOD',
                        help='The method column of per_case.csv, e.g. nnUNetTrainerDTC_EMATeacher.')
    parser.add_argument('--baseline', default=None, metavar='METHOD',
                        help='Default: the method\'s labelled-only ablation (what the unlabelled images add).')
    parser.add_argument('--seeds', nargs='+', type=int, default=None, metavar='SEED',
                        help='Default: every seed both the method and the baseline have.')
    parser.add_argument('--postprocessing', default=NO_POSTPROCESSING, choices=[NO_POSTPROCESSING, LARGEST_COMPONENT],
                        help=f'Default: {NO_POSTPROCESSING} (the test set as predicted).')
    return parser


def compare_reports_entry(argv: Optional[Sequence[str]] = None) -> None:
    args = _parser().parse_args(argv)
    try:
        baseline = args.baseline or default_baseline(args.method)
        comparison = compare_runs(collect_runs(args.reports), args.method, baseline, args.seeds, args.postprocessing)
    except ReportTableError as error:
        exit_with_error(COMMAND, error)
    print(comparison_markdown(comparison), end='')
