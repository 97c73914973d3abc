"""How nnUNetv2_dtc_make_ssl_dataset splits a dataset's cases into test, labelled and unlabelled ones.

The cases are first grouped: with a --group regular expression, the cases whose ids share its first capturing group
form one group (e.g. '^(patient\\d+)_' puts ACDC's patient001_frame01 and patient001_frame12 together); without it,
each case is its own group. All groups come from one seeded permutation of the sorted group names: the first M are
the test groups, the next N the labelled ones, the rest unlabelled, and every case goes where its group goes. So a
group is never on two sides, for one seed and M the test cases do not depend on N, and a smaller labelled set is
contained in a larger one, which keeps a sweep over the labelled fraction a fair comparison.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from nnunetv2_dtc.utilities.cli import shown

DEFAULT_SEED = 12345  # the seed of nnU-Net's own cross-validation split (nnUNetTrainer.do_split)
GROUP_EXAMPLE = r"'^(patient\d+)_'"


class SslSplitError(ValueError):
    """Arguments or a source dataset that cannot give the requested split; the message says what to change."""


@dataclass(frozen=True)
class SslSplit:
    labeled: List[str]
    unlabeled: List[str]
    test: List[str]


def case_groups(case_ids: Sequence[str], pattern: Optional[str]) -> Dict[str, List[str]]:
    """{group name: its sorted case ids}: the first capturing group of `pattern` (re.search) in each case id, or each
    case on its own when pattern is None."""
    if pattern is None:
        return {case_id: [case_id] for case_id in sorted(case_ids)}
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise SslSplitError(f'--group {pattern!r} is not a regular expression ({e}). Pass e.g. {GROUP_EXAMPLE}.')
    if regex.groups < 1:
        raise SslSplitError(f'--group {pattern!r} has no capturing group: put the part of the case id that names '
                            f'the patient in parentheses, e.g. {GROUP_EXAMPLE}.')
    groups: Dict[str, List[str]] = {}
    ungrouped = []
    for case_id in sorted(case_ids):
        match = regex.search(case_id)
        if match is None or not match.group(1):
            ungrouped.append(case_id)
        else:
            groups.setdefault(match.group(1), []).append(case_id)
    if ungrouped:
        raise SslSplitError(f'--group {pattern!r} gives no group (no match, or an empty first group) to '
                            f'{shown(ungrouped)}. Every case needs one: change the expression, e.g. '
                            f'{GROUP_EXAMPLE}.')
    return groups


def num_labeled_from_fraction(labeled_fraction: float, num_cases: int, num_test: int) -> int:
    """round(fraction * (cases - test cases)), at least 1; cases are groups with --group. Python's round: an exact
    half goes to the even number."""
    if not 0 < labeled_fraction <= 1:
        raise SslSplitError(f'--labeled_fraction must be in (0, 1], got {labeled_fraction}. Pass e.g. 0.1 for 10 % '
                            f'of the training cases, or give a count with --labeled.')
    return max(1, round(labeled_fraction * (num_cases - num_test)))


def draw_split(case_ids: Sequence[str], num_labeled: int, num_test: int, seed: int = DEFAULT_SEED,
               groups: Optional[Dict[str, List[str]]] = None) -> SslSplit:
    """Test groups first, then labelled ones, from numpy's default_rng(seed) permutation of the sorted group names;
    num_labeled and num_test count groups. Without groups every case is its own group."""
    grouped = groups is not None
    groups = groups if grouped else case_groups(case_ids, None)
    unit = 'groups' if grouped else 'cases'
    if num_test < 0:
        raise SslSplitError(f'--test must be 0 or more, got {num_test}.')
    if num_labeled < 1:
        raise SslSplitError(f'--labeled must be at least 1, got {num_labeled}: a semi-supervised dataset needs '
                            f'labelled training cases. Pass --labeled 1 or more.')
    if num_labeled + num_test > len(groups):
        raise SslSplitError(f'{num_labeled} labelled (--labeled/--labeled_fraction) plus {num_test} test {unit} '
                            f'(--test) is {num_labeled + num_test}, but the source dataset has only {len(groups)} '
                            f'{unit}. Lower --labeled, --labeled_fraction or --test.')
    order = np.random.default_rng(seed).permutation(sorted(groups)).tolist()

    def cases_of(names: List[str]) -> List[str]:
        return sorted(case_id for name in names for case_id in groups[name])

    return SslSplit(labeled=cases_of(order[num_test:num_test + num_labeled]),
                    unlabeled=cases_of(order[num_test + num_labeled:]), test=cases_of(order[:num_test]))


def groups_of(cases: Sequence[str], groups: Dict[str, List[str]]) -> List[str]:
    """The sorted names of the groups that `cases` belong to."""
    members = set(cases)
    return sorted(name for name, group_cases in groups.items() if members.intersection(group_cases))
