"""Paired comparison of a method against a baseline evaluated on the same cases: means and spreads, per-case
differences (method minus baseline), wins/losses/ties from the method's side, and the Wilcoxon signed-rank test.

For distances (HD95, ASD) lower is better, so there a win is a smaller value. A case whose value is None for either
side (an undefined distance, see metrics.py) is left out of that metric's comparison and listed with the
reason; all means and the test then use the remaining paired cases only.
"""
import math
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
from scipy.stats import ttest_1samp, wilcoxon

from nnunetv2_dtc.benchmark.metrics import LOWER_IS_BETTER, METRIC_NAMES, summarize

MIN_CASES_FOR_TEST = 2
MIN_VALUES_FOR_T_TEST = 2  # a sample standard deviation needs two values
# MONAI computes surface distances in float32 (relative precision 6e-8): one distance reached through different voxels
# differs by about 1e-6 of its value (seen: 1.4142120 and 1.4142135 mm, both sqrt(2)); two distances closer than this
# share of the larger are a tie, not a win, and a zero difference in the Wilcoxon test
DISTANCE_RELATIVE_TIE_TOLERANCE = 1e-5
# values whose spread is below this share of their size do not vary: a t-test on them divides rounding noise by itself
T_TEST_RELATIVE_SPREAD = 1e-9
# scipy's default: zero differences are dropped before ranking (Wilcoxon's original treatment)
WILCOXON_ZERO_METHOD = 'wilcox'
WILCOXON_ALTERNATIVE = 'two-sided'


class PairedStatisticsError(ValueError):
    """Results that cannot be compared case by case; the message says why."""


def paired_comparison(method_values: Mapping[str, Optional[float]], baseline_values: Mapping[str, Optional[float]],
                      higher_is_better: bool, tie_tolerance: float = 0.0,
                      relative_tie_tolerance: float = 0.0) -> dict:
    """Compares per-case values ({case id: value}) of a method and a baseline over the same case ids. A case is a
    tie when the values differ by at most tie_tolerance + relative_tie_tolerance x the larger magnitude, and its
    difference counts as 0 in the Wilcoxon test.
    Returns {'higher_is_better', 'n_cases', 'n_paired',
    'excluded_cases': {case: reason}, 'method': summary, 'baseline': summary, 'differences': {case: method -
    baseline}, 'difference': summary, 'wins', 'losses', 'ties', 'wilcoxon': {'p_value', 'statistic', 'n_nonzero',
    'reason'}}; the p-value and statistic are None, with the reason, when the test cannot be run."""
    if set(method_values) != set(baseline_values):
        only_method, only_baseline = sorted(set(method_values) - set(baseline_values)), \
            sorted(set(baseline_values) - set(method_values))
        raise PairedStatisticsError(f'The method and the baseline were evaluated on different cases (only the method: '
                                    f'{only_method[:10]}, only the baseline: {only_baseline[:10]}). Evaluate both on '
                                    f'the same test cases.')
    reasons = {case: _exclusion_reason(method_values[case], baseline_values[case]) for case in sorted(method_values)}
    excluded = {case: reason for case, reason in reasons.items() if reason is not None}
    paired = [case for case in sorted(method_values) if case not in excluded]
    differences = {case: float(method_values[case]) - float(baseline_values[case]) for case in paired}
    better_sign = 1 if higher_is_better else -1
    tied = {case: abs(d) <= tie_tolerance + relative_tie_tolerance * max(abs(float(method_values[case])),
                                                                          abs(float(baseline_values[case])))
            for case, d in differences.items()}
    signs = [0 if tied[case] else better_sign * int(np.sign(d)) for case, d in differences.items()]
    return {'higher_is_better': higher_is_better, 'n_cases': len(method_values), 'n_paired': len(paired),
            'excluded_cases': excluded,
            'method': _mean_std([method_values[c] for c in paired]),
            'baseline': _mean_std([baseline_values[c] for c in paired]),
            'differences': differences, 'difference': _mean_std(list(differences.values())),
            'wins': signs.count(1), 'losses': signs.count(-1), 'ties': signs.count(0),
            'wilcoxon': wilcoxon_signed_rank([0.0 if tied[case] else d for case, d in differences.items()])}


def wilcoxon_signed_rank(differences: Sequence[float]) -> dict:
    """{'p_value', 'statistic', 'n_nonzero', 'reason'}: scipy.stats.wilcoxon (two-sided, zero differences dropped,
    exact for small samples), or None values with the reason for fewer than 2 cases or no nonzero difference."""
    n_nonzero = sum(d != 0 for d in differences)
    if len(differences) < MIN_CASES_FOR_TEST:
        reason = f'fewer than {MIN_CASES_FOR_TEST} paired cases ({len(differences)})'
    elif n_nonzero == 0:
        reason = f'all {len(differences)} paired differences are zero (identical results)'
    else:
        result = wilcoxon(differences, zero_method=WILCOXON_ZERO_METHOD, alternative=WILCOXON_ALTERNATIVE)
        return {'p_value': float(result.pvalue), 'statistic': float(result.statistic), 'n_nonzero': n_nonzero,
                'reason': None}
    return {'p_value': None, 'statistic': None, 'n_nonzero': n_nonzero, 'reason': reason}


def one_sample_t_test(differences: Sequence[Optional[float]]) -> dict:
    """{'p_value', 'reason'}: two-sided one-sample t-test that the mean of per-seed differences is 0 (scipy's
    ttest_1samp) over the values that are not None, or None with the reason for fewer than 2 values or values that do
    not vary (no spread to test)."""
    values = [float(d) for d in differences if d is not None]
    if len(values) < MIN_VALUES_FOR_T_TEST:
        return {'p_value': None, 'reason': f'fewer than {MIN_VALUES_FOR_T_TEST} values ({len(values)})'}
    if np.ptp(values) <= T_TEST_RELATIVE_SPREAD * max(abs(v) for v in values):
        return {'p_value': None, 'reason': f'all {len(values)} values are equal'}
    return {'p_value': float(ttest_1samp(values, 0.0).pvalue), 'reason': None}


def compare_folder_metrics(method_result: dict, baseline_result: dict,
                           metric_names: Sequence[str] = METRIC_NAMES) -> Dict[str, Dict[str, dict]]:
    """{class or region key: {metric: paired_comparison}} of two metrics.folder_metrics results (lower is
    better for the distances, which tie within DISTANCE_RELATIVE_TIE_TOLERANCE). Refuses results with different
    post-processing: those are separate rows."""
    if method_result['postprocessing'] != baseline_result['postprocessing']:
        raise PairedStatisticsError(f'The method\'s results are post-processed with '
                                    f'{method_result["postprocessing"]!r} but the baseline\'s with '
                                    f'{baseline_result["postprocessing"]!r}. Compare results with the same '
                                    f'post-processing.')
    if method_result['labels_or_regions'] != baseline_result['labels_or_regions']:
        raise PairedStatisticsError(f'The method was evaluated on classes {method_result["labels_or_regions"]}, the '
                                    f'baseline on {baseline_result["labels_or_regions"]}. Use the same dataset.json.')
    per_case = {side: {case['case_id']: case['metrics'] for case in result['metric_per_case']}
                for side, result in (('method', method_result), ('baseline', baseline_result))}
    return {key: {metric: paired_comparison({c: m[key][metric] for c, m in per_case['method'].items()},
                                            {c: m[key][metric] for c, m in per_case['baseline'].items()},
                                            higher_is_better=metric not in LOWER_IS_BETTER,
                                            relative_tie_tolerance=DISTANCE_RELATIVE_TIE_TOLERANCE
                                            if metric in LOWER_IS_BETTER else 0.0)
                  for metric in metric_names}
            for key in method_result['labels_or_regions']}


def _mean_std(values: Sequence[float]) -> dict:
    summary = summarize(values)
    return {'mean': summary['mean'], 'std': summary['std']}


def _exclusion_reason(method_value: Optional[float], baseline_value: Optional[float]) -> Optional[str]:
    missing = [side for side, value in (('method', method_value), ('baseline', baseline_value))
               if value is None or math.isnan(value)]
    return f'no value for the {" and the ".join(missing)}' if missing else None
