"""How nnUNetv2_dtc_make_ssl_dataset draws its split, with and without --group (cases of one patient kept on one
side): a property test over random groupings, the ungrouped draw by hand, the refusals, and the dataset written."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.ssl_source import NEW_ID, SOURCE_ID
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME, make_ssl_dataset, \
    make_ssl_dataset_entry
from nnunetv2_dtc.dataset_conversion.split import SslSplitError, case_groups, draw_split, groups_of

PATIENT_GROUP = r'^(patient\d+)_'
NUM_RANDOM_GROUPINGS = 300


def _random_grouped_cases(rng: np.random.Generator):
    """Case ids patientNNN_frameMM with 1 to 4 frames for each of 2 to 30 patients, in random order."""
    frames = rng.integers(1, 5, size=rng.integers(2, 31))
    cases = [f'patient{p:03d}_frame{f:02d}' for p, count in enumerate(frames) for f in rng.choice(30, count, False)]
    return [str(c) for c in rng.permutation(cases)], len(frames)


def test_a_group_never_lands_on_two_sides_and_the_counts_are_groups():
    rng = np.random.default_rng(0)
    for _ in range(NUM_RANDOM_GROUPINGS):
        cases, num_groups = _random_grouped_cases(rng)
        groups = case_groups(cases, PATIENT_GROUP)
        num_test = int(rng.integers(0, num_groups))
        num_labeled = int(rng.integers(1, num_groups - num_test + 1))
        seed = int(rng.integers(0, 1000))
        split = draw_split(cases, num_labeled, num_test, seed, groups)

        sides = {'labeled': split.labeled, 'unlabeled': split.unlabeled, 'test': split.test}
        assert sorted(c for side in sides.values() for c in side) == sorted(cases)
        side_of_group = {}
        for side, side_cases in sides.items():
            for case in side_cases:
                group = case.split('_')[0]
                assert side_of_group.setdefault(group, side) == side, f'{group} is on two sides'
        assert len(groups_of(split.test, groups)) == num_test
        assert len(groups_of(split.labeled, groups)) == num_labeled
        assert len(groups_of(split.unlabeled, groups)) == num_groups - num_test - num_labeled
        # the test groups are drawn first: more labelled groups keep the test set and extend the labelled set
        if num_test + num_labeled < num_groups:
            larger = draw_split(cases, num_labeled + 1, num_test, seed, groups)
            assert larger.test == split.test and set(split.labeled) < set(larger.labeled)


def test_without_groups_every_case_is_drawn_alone_as_before():
    cases = [f'case_{i:02d}' for i in range(12)]
    order = np.random.default_rng(5).permutation(sorted(cases)).tolist()
    split = draw_split(list(reversed(cases)), num_labeled=3, num_test=4, seed=5)
    assert split.test == sorted(order[:4]) and split.labeled == sorted(order[4:7])
    assert split.unlabeled == sorted(order[7:])
    assert case_groups(cases, None) == {c: [c] for c in cases}


@pytest.mark.parametrize('pattern,cases,expected', [
    ('(', ['patient001_frame01'], 'is not a regular expression'),
    (r'^patient\d+_', ['patient001_frame01'], 'has no capturing group'),
    (PATIENT_GROUP, ['case_a', 'case_b', 'patient001_frame01'], 'gives no group (no match, or an empty first '
                                                                'group) to 2 case(s): case_a, case_b'),
    (r'^(x?)patient', ['patient001_frame01'], '1 case(s): patient001_frame01'),
])
def test_an_expression_that_leaves_cases_without_a_group_is_refused_with_the_first_of_them(pattern, cases, expected):
    with pytest.raises(SslSplitError) as error:
        case_groups(cases, pattern)
    assert expected in str(error.value)


def test_too_many_groups_asked_for_are_refused_in_groups():
    groups = case_groups(['patient001_frame01', 'patient001_frame02', 'patient002_frame01'], PATIENT_GROUP)
    with pytest.raises(SslSplitError, match=r'1 labelled .* plus 2 test groups \(--test\) is 3, but the source '
                                            r'dataset has only 2 groups'):
        draw_split(sum(groups.values(), []), 1, 2, groups=groups)


def _two_frames_per_patient(source: Path) -> None:
    """Renames the source's cases dtc_000 ... dtc_009 to patient000_frame00, patient000_frame01, patient001_frame00
    ..."""
    for i in range(10):
        case, new = f'dtc_{i:03d}', f'patient{i // 2:03d}_frame{i % 2:02d}'
        (source / 'imagesTr' / f'{case}_0000.nii.gz').rename(source / 'imagesTr' / f'{new}_0000.nii.gz')
        (source / 'labelsTr' / f'{case}.nii.gz').rename(source / 'labelsTr' / f'{new}.nii.gz')


def test_grouped_dataset_keeps_both_frames_of_a_patient_together_and_records_the_groups(nnunet_env, source):
    _two_frames_per_patient(source)
    new = Path(make_ssl_dataset(SOURCE_ID, NEW_ID, num_test=1, num_labeled=2, group=PATIENT_GROUP))

    record = json.loads((new / SPLIT_RECORD_FILE_NAME).read_text())
    assert record['group_pattern'] == PATIENT_GROUP and record['arguments']['group'] == PATIENT_GROUP
    assert record['groups'] == {f'patient{p:03d}': [f'patient{p:03d}_frame00', f'patient{p:03d}_frame01']
                                for p in range(5)}
    assert (len(record['test_groups']), len(record['labeled_groups']), len(record['unlabeled_groups'])) == (1, 2, 2)
    assert (record['num_test'], record['num_labeled'], record['num_unlabeled']) == (2, 4, 4)
    for side in ('labeled', 'unlabeled', 'test'):
        assert record[side] == sorted(c for g in record[f'{side}_groups'] for c in record['groups'][g])
    assert json.loads((new / 'dataset.json').read_text())['numTraining'] == 4
    assert sorted(p.name for p in (new / 'labelsTs').iterdir()) == [f'{c}.nii.gz' for c in record['test']]


def test_help_says_that_several_scans_per_patient_need_group(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['nnUNetv2_dtc_make_ssl_dataset', '--help'])
    with pytest.raises(SystemExit):
        make_ssl_dataset_entry()
    text = ' '.join(capsys.readouterr().out.split())
    assert '--group REGEX' in text and 'leaks' in text and 'count groups' in text
