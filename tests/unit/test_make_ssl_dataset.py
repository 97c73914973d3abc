"""nnUNetv2_dtc_make_ssl_dataset in this process on a tiny synthetic nnU-Net raw dataset: counts, determinism, links,
and the refusals (with nothing written)."""
import errno
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from helpers.ssl_source import NEW_ID, SOURCE_ID, SOURCE_NAME, file_names
from nnunetv2_dtc.dataset_conversion import make_ssl_dataset as ssl_split_module
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME, make_ssl_dataset, \
    make_ssl_dataset_entry
from nnunetv2_dtc.dataset_conversion.split import SslSplitError, draw_split, num_labeled_from_fraction
from nnunetv2_dtc.utilities import files as files_module


def test_command_refusal_exits_with_status_2_and_no_traceback(nnunet_env, source, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [ssl_split_module.COMMAND, '-d', str(SOURCE_ID), '-o', str(NEW_ID),
                                      '--labeled', '8', '--test', '3'])
    with pytest.raises(SystemExit) as exited:
        make_ssl_dataset_entry()
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        'nnUNetv2_dtc_make_ssl_dataset: error: 8 labelled (--labeled/--labeled_fraction) plus 3 test cases (--test) '
        'is 11, but the source dataset has only 10 cases. Lower --labeled, --labeled_fraction or --test.\n')
    assert file_names(nnunet_env.raw) == [SOURCE_NAME]


def test_split_is_deterministic_disjoint_and_nested():
    case_ids = [f'case_{i:02d}' for i in range(20)]
    split = draw_split(case_ids, num_labeled=5, num_test=4, seed=1)
    assert draw_split(list(reversed(case_ids)), num_labeled=5, num_test=4, seed=1) == split
    other_seed = draw_split(case_ids, num_labeled=5, num_test=4, seed=2)
    assert (other_seed.test, other_seed.labeled) != (split.test, split.labeled)

    groups = [set(split.labeled), set(split.unlabeled), set(split.test)]
    assert [len(g) for g in groups] == [5, 11, 4]
    assert set.union(*groups) == set(case_ids) and sum(len(g) for g in groups) == len(case_ids)

    # the test cases are drawn first, so more labelled cases keep the test set and extend the labelled set
    larger = draw_split(case_ids, num_labeled=9, num_test=4, seed=1)
    assert larger.test == split.test and set(split.labeled) < set(larger.labeled)


def test_labeled_fraction_rounds_and_keeps_at_least_one_case():
    assert num_labeled_from_fraction(0.3, num_cases=10, num_test=3) == 2  # round(2.1)
    assert num_labeled_from_fraction(0.4, num_cases=10, num_test=3) == 3  # round(2.8)
    assert num_labeled_from_fraction(0.01, num_cases=10, num_test=3) == 1


def test_link_makes_hard_links(nnunet_env, source):
    new = Path(make_ssl_dataset(SOURCE_ID, NEW_ID, num_test=2, num_labeled=3, link=True))
    record = json.loads((new / SPLIT_RECORD_FILE_NAME).read_text())
    assert record['files'] == {'hardlink': 2 * 2 + 3 * 2 + 5, 'symlink': 0, 'copy': 0}
    for case in record['labeled']:
        linked = new / 'imagesTr' / f'{case}_0000.nii.gz'
        assert not linked.is_symlink() and linked.stat().st_nlink == 2
        assert os.path.samefile(linked, source / 'imagesTr' / f'{case}_0000.nii.gz')
    for case in record['test']:
        assert os.path.samefile(new / 'labelsTs' / f'{case}.nii.gz', source / 'labelsTr' / f'{case}.nii.gz')


def test_link_falls_back_to_symbolic_links_where_hard_links_fail(nnunet_env, source, monkeypatch, capsys):
    def cross_device_link(*args, **kwargs):
        raise OSError(errno.EXDEV, 'Invalid cross-device link')

    monkeypatch.setattr(os, 'link', cross_device_link)
    new = Path(make_ssl_dataset(SOURCE_ID, NEW_ID, num_test=2, num_labeled=3, link=True))
    record = json.loads((new / SPLIT_RECORD_FILE_NAME).read_text())
    assert record['files'] == {'hardlink': 0, 'symlink': 15, 'copy': 0}
    case = record['unlabeled'][0]
    linked = new / 'imagesUnlabeled' / f'{case}_0000.nii.gz'
    assert linked.is_symlink()
    assert os.readlink(linked) == os.path.realpath(source / 'imagesTr' / f'{case}_0000.nii.gz')
    assert 'Hard links were not possible for 15 file(s)' in capsys.readouterr().out


def test_failure_while_copying_leaves_no_partial_dataset(nnunet_env, source, monkeypatch):
    copied, copy_file = [], shutil.copyfile

    def copy_then_fail(source_file, destination):
        if len(copied) == 4:
            raise OSError(errno.ENOSPC, 'No space left on device')
        copied.append(copy_file(source_file, destination))

    monkeypatch.setattr(files_module.shutil, 'copyfile', copy_then_fail)
    with pytest.raises(OSError, match='No space left'):
        make_ssl_dataset(SOURCE_ID, NEW_ID, num_test=2, num_labeled=3)
    assert len(copied) == 4
    assert file_names(nnunet_env.raw) == [SOURCE_NAME]


def remove_label(source: Path, folders) -> None:
    (source / 'labelsTr' / 'dtc_004.nii.gz').unlink()


def add_second_channel(source: Path, folders) -> None:
    dataset_json = json.loads((source / 'dataset.json').read_text())
    (source / 'dataset.json').write_text(json.dumps({**dataset_json, 'channel_names': {'0': 'MRI', '1': 'T2'}}))


REFUSALS = {
    'no labelled case': (None, dict(num_test=2, num_labeled=0), ['--labeled must be at least 1, got 0']),
    'fraction above 1': (None, dict(num_test=2, labeled_fraction=1.5), ['--labeled_fraction must be in (0, 1], '
                                                                        'got 1.5']),
    'both counts': (None, dict(num_test=2, num_labeled=2, labeled_fraction=0.2),
                    ['exactly one of --labeled (a number of cases) and --labeled_fraction']),
    'target in raw': (lambda source, folders: (folders.raw / 'Dataset991_Other').mkdir(),
                      dict(num_test=2, num_labeled=2),
                      ['Dataset ID 991 (-o) is already used by Dataset991_Other', 'Choose a free ID with -o']),
    'target in preprocessed': (lambda source, folders: (folders.preprocessed / 'Dataset991_Old').mkdir(),
                               dict(num_test=2, num_labeled=2), ['Dataset ID 991 (-o) is already used by '
                                                                 'Dataset991_Old']),
    'unknown source': (None, dict(source=123, num_test=2, num_labeled=2),
                       ['Cannot use -d 123: Could not find a dataset with the ID 123', 'Give the ID or full name']),
    'no dataset.json': (lambda source, folders: (source / 'dataset.json').unlink(), dict(num_test=2, num_labeled=2),
                        [f'{SOURCE_NAME} is not an nnU-Net raw dataset', 'dataset.json is missing']),
    'no labelsTr': (lambda source, folders: shutil.rmtree(source / 'labelsTr'), dict(num_test=2, num_labeled=2),
                    [f'{SOURCE_NAME} has no labelsTr folder', 'fully labelled nnU-Net v2 raw dataset']),
    'missing label': (remove_label, dict(num_test=2, num_labeled=2),
                      ['no label file (labelsTr/CASE.nii.gz) for 1 case(s): dtc_004', 'Add the labels']),
    'missing channel': (add_second_channel, dict(num_test=2, num_labeled=2),
                        ['every case needs 2 channel file(s)', '10 case(s): dtc_000 (1 found), dtc_001 (1 found)',
                         'Add the missing channel files']),
}


@pytest.mark.parametrize('refusal', REFUSALS)
def test_refusals_name_the_problem_and_write_nothing(nnunet_env, source, refusal):
    prepare, arguments, message_parts = REFUSALS[refusal]
    if prepare is not None:
        prepare(source, nnunet_env)
    before = file_names(nnunet_env.raw)
    with pytest.raises(SslSplitError) as refused:
        make_ssl_dataset(**{'source': SOURCE_ID, 'new_id': NEW_ID, **arguments})
    for part in message_parts:
        assert part in str(refused.value)
    assert file_names(nnunet_env.raw) == before
