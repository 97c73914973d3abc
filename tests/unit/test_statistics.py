"""Paired comparison against values derived by hand: exact Wilcoxon p-values, win/loss direction, exclusions, and the
t-test over seeds."""
import math

import pytest

from nnunetv2_dtc.benchmark.statistics import PairedStatisticsError, compare_folder_metrics, one_sample_t_test, \
    paired_comparison, wilcoxon_signed_rank

CASES = [f'case_{i}' for i in range(6)]


def test_wilcoxon_matches_the_exact_distribution():
    # all 6 differences positive: W- = 0; P(W- = 0) = 1 / 2^6, two-sided 2 / 64
    assert wilcoxon_signed_rank([1, 2, 3, 4, 5, 6]) == \
        {'p_value': 2 / 64, 'statistic': 0.0, 'n_nonzero': 6, 'reason': None}
    # one negative difference of rank 2: W- = 2; the rank sets {}, {1}, {2} have sums <= 2, two-sided 2 * 3 / 64
    assert wilcoxon_signed_rank([1, -2, 3, 4, 5, 6]) == \
        {'p_value': 6 / 64, 'statistic': 2.0, 'n_nonzero': 6, 'reason': None}


def test_wilcoxon_refuses_explicitly_without_data():
    assert wilcoxon_signed_rank([0.0, 0.0, 0.0]) == \
        {'p_value': None, 'statistic': None, 'n_nonzero': 0,
         'reason': 'all 3 paired differences are zero (identical results)'}
    assert wilcoxon_signed_rank([0.3]) == \
        {'p_value': None, 'statistic': None, 'n_nonzero': 1, 'reason': 'fewer than 2 paired cases (1)'}


def test_lower_is_better_turns_wins_into_smaller_values():
    method = dict(zip(CASES, [1.0, 2.0, 3.0, 4.0, 5.0, None]))
    baseline = dict(zip(CASES, [2.0, 2.0, 5.0, 3.0, 6.0, 7.0]))
    as_distance = paired_comparison(method, baseline, higher_is_better=False)
    assert (as_distance['wins'], as_distance['losses'], as_distance['ties']) == (3, 1, 1)
    assert as_distance['differences'] == {'case_0': -1.0, 'case_1': 0.0, 'case_2': -2.0, 'case_3': 1.0,
                                          'case_4': -1.0}
    assert as_distance['excluded_cases'] == {'case_5': 'no value for the method'}
    assert (as_distance['n_cases'], as_distance['n_paired']) == (6, 5)
    assert as_distance['method'] == {'mean': 3.0, 'std': pytest.approx(2 ** 0.5)}
    assert as_distance['baseline']['mean'] == 18 / 5 and as_distance['difference']['mean'] == -3 / 5

    as_score = paired_comparison(method, baseline, higher_is_better=True)
    assert (as_score['wins'], as_score['losses'], as_score['ties']) == (1, 3, 1)
    assert as_score['wilcoxon'] == as_distance['wilcoxon']  # the test is two-sided


def test_tie_tolerance_and_different_cases():
    comparison = paired_comparison({'a': 0.90, 'b': 0.80}, {'a': 0.89, 'b': 0.70}, higher_is_better=True,
                                   tie_tolerance=0.02)
    assert (comparison['wins'], comparison['ties']) == (1, 1)
    with pytest.raises(PairedStatisticsError, match=r"only the method: \['c'\], only the baseline: \['b'\]"):
        paired_comparison({'a': 1.0, 'c': 1.0}, {'a': 1.0, 'b': 1.0}, higher_is_better=True)


def folder_result(values: dict, postprocessing: str = 'none') -> dict:
    """The parts of a metrics.folder_metrics result that the comparison reads."""
    return {'postprocessing': postprocessing, 'labels_or_regions': ['1'],
            'metric_per_case': [{'case_id': case, 'metrics': {'1': metrics}} for case, metrics in values.items()]}


def test_compare_folder_metrics_uses_each_metrics_direction_and_keeps_postprocessing_apart():
    method = folder_result({'a': {'Dice': 0.9, 'HD95_mm': 2.0}, 'b': {'Dice': 0.8, 'HD95_mm': None}})
    baseline = folder_result({'a': {'Dice': 0.7, 'HD95_mm': 3.0}, 'b': {'Dice': 0.85, 'HD95_mm': 1.0}})
    comparison = compare_folder_metrics(method, baseline, metric_names=('Dice', 'HD95_mm'))['1']
    assert (comparison['Dice']['wins'], comparison['Dice']['losses']) == (1, 1)
    assert comparison['HD95_mm']['higher_is_better'] is False
    assert (comparison['HD95_mm']['wins'], comparison['HD95_mm']['n_paired']) == (1, 1)
    with pytest.raises(PairedStatisticsError, match="post-processed with 'largest_component' but the baseline's "
                                                    "with 'none'"):
        compare_folder_metrics(folder_result({}, 'largest_component'), baseline)


def test_the_t_test_of_seed_differences_matches_the_cauchy_distribution():
    # differences 1 and 3: mean 2, sample std sqrt(2), t = 2 / (sqrt(2) / sqrt(2)) = 2 with 1 degree of freedom, whose
    # distribution is Cauchy: two-sided p = 1 - 2 arctan(2) / pi
    assert one_sample_t_test([1.0, 3.0])['p_value'] == pytest.approx(1 - 2 * math.atan(2) / math.pi, rel=1e-12)
    assert one_sample_t_test([0.5]) == {'p_value': None, 'reason': 'fewer than 2 values (1)'}
    assert one_sample_t_test([0.5, 0.5]) == {'p_value': None, 'reason': 'all 2 values are equal'}


def test_float32_noise_in_a_distance_is_a_tie_and_leaves_the_test():
    # case a: sqrt(2) mm twice, as MONAI's float32 distances gave it for two segmentations of one test case
    method = folder_result({'a': {'HD95_mm': 1.4142120}, 'b': {'HD95_mm': 2.0}, 'c': {'HD95_mm': 3.0}})
    baseline = folder_result({'a': {'HD95_mm': 1.4142135}, 'b': {'HD95_mm': 3.0}, 'c': {'HD95_mm': 4.0}})
    hd95 = compare_folder_metrics(method, baseline, metric_names=('HD95_mm',))['1']['HD95_mm']
    assert (hd95['wins'], hd95['losses'], hd95['ties']) == (2, 0, 1)
    # two nonzero differences, both of one sign: two-sided exact p = 2 / 2^2 (with case a's noise: 2 / 2^3)
    assert (hd95['wilcoxon']['n_nonzero'], hd95['wilcoxon']['p_value']) == (2, 0.5)
