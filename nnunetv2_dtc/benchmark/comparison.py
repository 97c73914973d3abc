"""The benchmark's numbers: per run (method and seed) the test-set mean and spread of every metric, the paired
comparison against vanilla nnU-Net trained with the same seed, and, with several seeds, a summary per method.

The tables use the per-case foreground value: each test case's metric averaged over the foreground classes (or
regions), None when any class has no value (an undefined distance), so every case counts once.
"""
import copy
from typing import Dict, List, Optional, Sequence

import numpy as np

from nnunetv2_dtc.benchmark.metrics import ASD_MM, DICE, HD95_MM, IOU, METRIC_NAMES, STD_DDOF, summarize
from nnunetv2_dtc.benchmark.settings import METHODS, UPPER_BOUND, VANILLA_TRAINER
from nnunetv2_dtc.benchmark.statistics import compare_folder_metrics
from nnunetv2_dtc.benchmark.training import BenchmarkRun

FOREGROUND = 'foreground'  # the per-case mean over the foreground classes, added as one more "class"
TABLE_METRICS = (DICE, IOU, HD95_MM, ASD_MM)
SEED_SUMMARY = 'mean over seeds'


def with_foreground(result: dict) -> dict:
    """A copy of a folder_metrics result with the per-case foreground mean added as the class FOREGROUND."""
    result = copy.deepcopy(result)
    classes = list(result['labels_or_regions'])
    for case in result['metric_per_case']:
        values = {metric: [case['metrics'][key][metric] for key in classes] for metric in METRIC_NAMES}
        case['metrics'][FOREGROUND] = {metric: None if None in v else float(np.mean(v)) for metric, v in values.items()}
    result['labels_or_regions'] = classes + [FOREGROUND]
    return result


def seed_average(results: Sequence[dict], metric_names: Sequence[str] = METRIC_NAMES) -> dict:
    """The per-case average over seeds of results with the same cases and classes (None where any seed has
    None), in folder_metrics' layout, for the paired comparison of seed-averaged methods. Only metric_names are
    averaged: any other metric keeps the first seed's values."""
    first = copy.deepcopy(results[0])
    by_case = [{case['case_id']: case['metrics'] for case in r['metric_per_case']} for r in results]
    for case in first['metric_per_case']:
        for key in first['labels_or_regions']:
            for metric in metric_names:
                values = [seed[case['case_id']][key][metric] for seed in by_case]
                case['metrics'][key][metric] = None if None in values else float(np.mean(values))
    return first


def case_values(result: dict, key: str, metric: str) -> List[Optional[float]]:
    return [case['metrics'][key][metric] for case in result['metric_per_case']]


def run_row(run: BenchmarkRun, result: dict, comparison: Optional[dict], info: dict) -> dict:
    """One table row: mean/std over the test cases of each metric (foreground and per class), the comparison with
    vanilla (None for vanilla itself), time per epoch and parameters."""
    return {'method': run.method, 'method_name': METHODS[run.method].name, 'seed': run.seed, 'trainer': run.trainer,
            'key': run.key,
            'n_cases': len(result['metric_per_case']),
            'metrics': {metric: summarize(case_values(result, FOREGROUND, metric)) for metric in METRIC_NAMES},
            'per_class': {key: {metric: summarize(case_values(result, key, metric)) for metric in METRIC_NAMES}
                          for key in result['labels_or_regions'] if key != FOREGROUND},
            'vs_vanilla': None if comparison is None else _short_comparison(comparison[FOREGROUND]),
            'time_per_epoch_s': {k: info['epoch_seconds'][k] for k in ('mean', 'std')},
            'parameters': info['parameters']}


def seed_summary_row(method: str, rows: Sequence[dict], comparison: Optional[dict], infos: Sequence[dict]) -> dict:
    """A method over several seeds: mean and std across seeds of the per-seed test means; the comparison uses the
    per-case values averaged over seeds; the time per epoch pools every epoch of every seed."""
    durations = [d for info in infos for d in info['epoch_seconds']['per_epoch']]
    return {'method': method, 'method_name': METHODS[method].name, 'seed': SEED_SUMMARY, 'trainer': None,
            'seeds': [row['seed'] for row in rows], 'n_cases': rows[0]['n_cases'],
            'metrics': {metric: summarize([row['metrics'][metric]['mean'] for row in rows]) for metric in METRIC_NAMES},
            'per_class': {key: {metric: summarize([row['per_class'][key][metric]['mean'] for row in rows])
                                for metric in METRIC_NAMES} for key in rows[0]['per_class']},
            'vs_vanilla': None if comparison is None else _short_comparison(comparison[FOREGROUND]),
            'time_per_epoch_s': {'mean': float(np.mean(durations)) if durations else None,
                                 'std': float(np.std(durations, ddof=STD_DDOF)) if durations else None},
            'parameters': rows[0]['parameters']}


def _short_comparison(per_metric: Dict[str, dict]) -> Dict[str, dict]:
    return {metric: {'difference': c['difference'], 'p_value': c['wilcoxon']['p_value'],
                     'p_value_reason': c['wilcoxon']['reason'], 'wins': c['wins'], 'losses': c['losses'],
                     'ties': c['ties'], 'n_paired': c['n_paired']}
            for metric, c in per_metric.items()}


def summarize_postprocessing(runs: Sequence[BenchmarkRun], results: Dict[str, dict],
                             infos: Dict[str, dict]) -> dict:
    """{'rows': table rows (runs by method, then seed, each method followed by its seed summary when there are
    several seeds), 'comparisons': {name: compare_folder_metrics result against vanilla}} for the folder_metrics
    results (by run key) of one post-processing."""
    extended = {trainer: with_foreground(result) for trainer, result in results.items()}
    vanilla = {run.seed: run.key for run in runs if run.method == VANILLA_TRAINER}
    methods = list(dict.fromkeys(run.method for run in runs))
    seeds = list(dict.fromkeys(run.seed for run in runs))
    rows, comparisons = [], {}
    for method in methods:
        method_runs = [run for run in runs if run.method == method]
        method_rows = []
        for run in method_runs:
            comparison = None
            if method != VANILLA_TRAINER and run.seed in vanilla:
                comparison = comparisons[run.key] = compare_folder_metrics(extended[run.key],
                                                                               extended[vanilla[run.seed]])
            method_rows.append(run_row(run, extended[run.key], comparison, infos[run.key]))
        rows += method_rows
        if len(seeds) > 1:
            comparison = None
            if method != VANILLA_TRAINER and vanilla:
                comparison = comparisons[f'{method} ({SEED_SUMMARY})'] = compare_folder_metrics(
                    seed_average([extended[run.key] for run in method_runs]),
                    seed_average([extended[vanilla[run.seed]] for run in method_runs]))
            rows.append(seed_summary_row(method, method_rows, comparison, [infos[r.key] for r in method_runs]))
    add_gap_closed(rows)
    return {'rows': rows, 'comparisons': comparisons, 'unlabeled_contribution': unlabeled_contribution(runs, extended)}


def unlabeled_contribution(runs: Sequence[BenchmarkRun], extended: Dict[str, dict]) -> Optional[dict]:
    """What the unlabelled images add, for each DTC method that ran with its labelled-only ablation (Method.ablation,
    the same network and losses without them): {method: {'ablation', 'per_seed': [{'seed', metric: comparison}],
    'over_seeds': {metric: {'difference': summarize(per-seed mean differences), 'seed_averaged': comparison of the
    per-case values averaged over seeds}}}}, paired per test case with the same seed; None when no pair ran."""
    by_method_seed = {(run.method, run.seed): run.key for run in runs}
    contributions = {}
    for method in dict.fromkeys(run.method for run in runs):
        ablation = METHODS[method].ablation
        seeds = [seed for seed in dict.fromkeys(run.seed for run in runs)
                 if (method, seed) in by_method_seed and (ablation, seed) in by_method_seed]
        if ablation is not None and seeds:
            contributions[method] = {'ablation': ablation,
                                     **paired_over_seeds(extended, [by_method_seed[(method, s)] for s in seeds],
                                                          [by_method_seed[(ablation, s)] for s in seeds], seeds)}
    return contributions or None


def paired_over_seeds(extended: Dict[str, dict], keys: Sequence[str], reference_keys: Sequence[str],
                      seeds: Sequence[int], metric_names: Sequence[str] = METRIC_NAMES) -> dict:
    """{'per_seed': [{'seed', metric: comparison}], 'over_seeds': {metric: {'difference', 'seed_averaged'}}} of the
    runs `keys` against `reference_keys` (one of each per seed; results with the FOREGROUND class), as
    unlabeled_contribution documents it."""
    per_seed = []
    for seed, key, reference_key in zip(seeds, keys, reference_keys):
        comparison = compare_folder_metrics(extended[key], extended[reference_key], metric_names)
        per_seed.append({'seed': seed, **_short_comparison(comparison[FOREGROUND])})
    averaged = compare_folder_metrics(seed_average([extended[k] for k in keys], metric_names),
                                      seed_average([extended[k] for k in reference_keys], metric_names),
                                      metric_names)
    averaged = _short_comparison(averaged[FOREGROUND])
    return {'per_seed': per_seed,
            'over_seeds': {metric: {'difference': summarize([row[metric]['difference']['mean'] for row in per_seed]),
                                    'seed_averaged': averaged[metric]} for metric in metric_names}}


def gap_closed(value: Optional[float], vanilla: Optional[float], upper_bound: Optional[float]) -> Optional[float]:
    """The share of the gap to the upper bound a method closes: (method - vanilla) / (upper bound - vanilla); None
    when a value is missing or the upper bound equals vanilla. The same formula serves metrics where lower is
    better (HD95, ASD): both differences change sign together."""
    if value is None or vanilla is None or upper_bound is None or upper_bound == vanilla:
        return None
    return (value - vanilla) / (upper_bound - vanilla)


def add_gap_closed(rows: List[dict]) -> None:
    """Adds 'gap_closed' to every row: {metric: share} per seed, from the test means of the method, vanilla and the
    upper bound with that seed; {metric: summarize(shares over seeds)} in a seed summary; None for vanilla, the upper
    bound itself, or without an upper bound."""
    per_seed = {(row['method'], row['seed']): row for row in rows if row['seed'] != SEED_SUMMARY}
    for row in rows:
        row['gap_closed'] = None
    for row in rows:
        if row['method'] in (VANILLA_TRAINER, UPPER_BOUND):
            continue
        if row['seed'] != SEED_SUMMARY:
            vanilla, upper = per_seed.get((VANILLA_TRAINER, row['seed'])), per_seed.get((UPPER_BOUND, row['seed']))
            if vanilla is not None and upper is not None:
                row['gap_closed'] = {metric: gap_closed(row['metrics'][metric]['mean'],
                                                        vanilla['metrics'][metric]['mean'],
                                                        upper['metrics'][metric]['mean']) for metric in METRIC_NAMES}
        else:
            shares = [per_seed[(row['method'], seed)]['gap_closed'] for seed in row['seeds']]
            if all(share is not None for share in shares):
                row['gap_closed'] = {metric: summarize([share[metric] for share in shares])
                                     for metric in METRIC_NAMES}


def method_case_values(runs: Sequence[BenchmarkRun], results: Dict[str, dict], metric: str) -> Dict[str, dict]:
    """{method: {case id: foreground value averaged over the method's seeds}} for the plots."""
    values = {}
    for method in dict.fromkeys(run.method for run in runs):
        averaged = seed_average([with_foreground(results[run.key]) for run in runs if run.method == method])
        values[method] = {case['case_id']: case['metrics'][FOREGROUND][metric] for case in averaged['metric_per_case']}
    return values
