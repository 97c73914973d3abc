"""nnUNetv2_dtc_demo end to end (with a very short schedule), exactly as a user calls it."""
import json
import re

import pytest

from helpers.nnunet_folders import run_console_script

pytestmark = pytest.mark.slow  # subprocesses of nnU-Net's commands


TINY_DEMO = ('--device', 'cpu', '--epochs', 1, '--iterations_per_epoch', 2, '--num_labeled', 2, '--num_unlabeled', 2,
             '--num_test', 1, '-np', 1)


def test_compare_demo_runs_the_whole_workflow_for_dtc_vanilla_and_the_ablation_and_a_rerun_reuses_it(nnunet_env,
                                                                                                     tmp_path):
    """One run of --compare covers the plain demo too: its steps 1-5 are the plain demo's (the same code, on the
    harder synthetic set), so the plain demo does not get a subprocess run of its own (about 4 minutes saved)."""
    out = tmp_path / 'compare'
    result = run_console_script(nnunet_env, ['nnUNetv2_dtc_demo'], '--out', out, '--compare', *TINY_DEMO)
    # numbered steps, nnU-Net's planning phases and one line per epoch with its loss, not minutes of silence
    for shown in ('[demo 1/11] plan and preprocess', 'Fingerprint extraction...', 'Experiment planning...',
                  '[demo 3/11] train nnUNetTrainerDTC', '[demo 5/11] evaluate nnUNetTrainerDTC done',
                  '[demo 6/11] train nnUNetTrainer:', '[demo 9/11] train nnUNetTrainerDTC_LabeledOnly:',
                  '[demo 11/11] evaluate nnUNetTrainerDTC_LabeledOnly done',
                  'the unlabelled and test ones of every size'):
        assert shown in result.stdout, shown
    assert re.search(r'epoch 1/1: train_loss -?\d+\.\d+, \d+\.\d s', result.stdout), result.stdout
    match = re.search(r'mean foreground Dice on 1 held-out test cases: (\d\.\d+)', result.stdout)
    assert match, result.stdout
    summary = json.loads((out / 'predictions' / 'summary.json').read_text())
    assert float(match.group(1)) == round(summary['foreground_mean']['Dice'], 4)
    assert len(summary['metric_per_case']) == 1
    assert (out / 'nnUNet_preprocessed' / 'Dataset991_DTCCompare' / 'nnUNetPlans_3d_fullres_unlabeled.json').is_file()
    results = out / 'nnUNet_results' / 'Dataset991_DTCCompare'
    # seeded (default seed 0), so all three models are reproducible up to the augmentation workers
    for model in ('nnUNetTrainerDTC_1ep_2it_s0', 'nnUNetTrainer_1ep_2it_s0', 'nnUNetTrainerDTC_LabeledOnly_1ep_2it_s0'):
        assert (results / f'{model}__nnUNetPlans__3d_fullres' / 'fold_all' / 'checkpoint_final.pth').is_file()
    for folder, row in (('predictions', 'nnUNetTrainerDTC (labelled + unlabelled)'),
                        ('predictions_nnUNetTrainer', 'nnUNetTrainer (labelled only)'),
                        ('predictions_nnUNetTrainerDTC_LabeledOnly', 'nnUNetTrainerDTC_LabeledOnly (DTC losses, '
                                                                     'labelled only)')):
        dice = json.loads((out / folder / 'summary.json').read_text())['foreground_mean']['Dice']
        assert re.search(rf'{re.escape(row)}\s+{dice:.4f}', result.stdout), (row, dice, result.stdout)
    assert re.search(r'DTC (beats|does not beat) nnU-Net \([+-]\d\.\d{4} Dice\); the unlabelled images (add|do not '
                     r'add) to it \([+-]\d\.\d{4} against the labelled-only ablation\); 1 test cases', result.stdout)
    record = json.loads((out / 'nnunet_dtc_demo.json').read_text())
    assert sorted(record['compared']) == ['nnUNetTrainer', 'nnUNetTrainerDTC_LabeledOnly']
    assert record['settings']['compare'] is True and record['settings']['seed'] == 0

    # the same command again: the finished demo is reused, its Dice printed again, nothing retrained
    checkpoint = results / 'nnUNetTrainerDTC_1ep_2it_s0__nnUNetPlans__3d_fullres' / 'fold_all' / 'checkpoint_final.pth'
    checkpoint_mtime = checkpoint.stat().st_mtime_ns
    again = run_console_script(nnunet_env, ['nnUNetv2_dtc_demo'], '--out', out, '--compare', *TINY_DEMO)
    assert 'already holds this demo' in again.stdout and f'{float(match.group(1)):.4f}' in again.stdout
    assert '--overwrite' in again.stdout
    assert checkpoint.stat().st_mtime_ns == checkpoint_mtime
    other = run_console_script(nnunet_env, ['nnUNetv2_dtc_demo'], '--out', out, *TINY_DEMO, check=False)
    assert other.returncode != 0 and 'a demo with other settings' in other.stderr and '--overwrite' in other.stderr


def test_demo_refuses_a_non_empty_output_folder(nnunet_env, tmp_path):
    (tmp_path / 'busy').mkdir()
    (tmp_path / 'busy' / 'keep.txt').write_text('mine')
    result = run_console_script(nnunet_env, ['nnUNetv2_dtc_demo'], '--out', tmp_path / 'busy', check=False)
    assert result.returncode != 0
    assert 'is not empty' in result.stderr
    assert sorted(p.name for p in (tmp_path / 'busy').iterdir()) == ['keep.txt']
