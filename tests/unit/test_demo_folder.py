"""The demo's output folder rules: a finished demo is reused, --overwrite replaces an earlier demo only, and a folder
that is not a demo's is never touched."""
import json

import pytest

from nnunetv2_dtc.demo import DEMO_RECORD, DemoFolderError, comparison_lines, prepare_out_folder

SETTINGS = {'epochs': 3, 'iterations_per_epoch': 25, 'num_labeled': 4, 'num_unlabeled': 12, 'num_test': 4,
            'device': 'cpu'}


def _demo_folder(tmp_path, record):
    out = tmp_path / 'demo'
    (out / 'nnUNet_results').mkdir(parents=True)
    (out / 'nnUNet_results' / 'model.pth').write_bytes(b'weights')
    (out / DEMO_RECORD).write_text(json.dumps(record))
    return out


def test_absent_or_empty_folders_are_used_as_they_are(tmp_path):
    assert prepare_out_folder(str(tmp_path / 'absent'), SETTINGS, overwrite=False) is None
    (tmp_path / 'empty').mkdir()
    assert prepare_out_folder(str(tmp_path / 'empty'), SETTINGS, overwrite=False) is None


def test_a_finished_demo_with_the_same_settings_is_reused_untouched(tmp_path):
    out = _demo_folder(tmp_path, {'settings': SETTINGS, 'dice': 0.9, 'model_folder': 'm'})
    assert prepare_out_folder(str(out), SETTINGS, overwrite=False)['dice'] == 0.9
    assert (out / 'nnUNet_results' / 'model.pth').is_file()


@pytest.mark.parametrize('record,reason', [({'settings': SETTINGS}, 'an unfinished demo'),
                                           ({'settings': {**SETTINGS, 'epochs': 1}, 'dice': 0.5},
                                            'a demo with other settings')])
def test_an_unfinished_or_other_demo_needs_overwrite_and_is_then_emptied(tmp_path, record, reason):
    out = _demo_folder(tmp_path, record)
    with pytest.raises(DemoFolderError, match=f'holds {reason}. Add --overwrite'):
        prepare_out_folder(str(out), SETTINGS, overwrite=False)
    assert (out / 'nnUNet_results' / 'model.pth').is_file()
    assert prepare_out_folder(str(out), SETTINGS, overwrite=True) is None
    assert list(out.iterdir()) == []


@pytest.mark.parametrize('overwrite', [False, True])
def test_a_folder_that_is_not_a_demo_is_never_touched(tmp_path, overwrite):
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'keep.txt').write_text('mine')
    with pytest.raises(DemoFolderError, match='is not empty and holds no demo'):
        prepare_out_folder(str(tmp_path / 'mine'), SETTINGS, overwrite=overwrite)
    assert (tmp_path / 'mine' / 'keep.txt').read_text() == 'mine'


def test_the_comparison_says_who_is_ahead_and_what_the_unlabelled_images_add():
    lines = comparison_lines({'nnUNetTrainerDTC': 0.8, 'nnUNetTrainer': 0.7, 'nnUNetTrainerDTC_LabeledOnly': 0.85}, 6)
    assert [line.split()[-1] for line in lines[:3]] == ['0.8000', '0.8500', '0.7000']
    assert 'DTC beats nnU-Net (+0.1000 Dice); the unlabelled images do not add to it (-0.0500 against' in lines[3]
    assert '6 test cases, one seed' in lines[3]
    lines = comparison_lines({'nnUNetTrainerDTC': 0.6, 'nnUNetTrainer': 0.7, 'nnUNetTrainerDTC_LabeledOnly': 0.5}, 6)
    assert 'DTC does not beat nnU-Net (-0.1000 Dice); the unlabelled images add to it (+0.1000' in lines[3]
