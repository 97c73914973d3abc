"""nnUNetTrainerDTC through nnU-Net's own commands, in subprocesses, on a tiny synthetic dataset:
nnUNetv2_plan_and_preprocess, nnUNetv2_dtc_preprocess_unlabeled, nnUNetv2_train, nnUNetv2_predict."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from helpers.nnunet_folders import NnUNetFolders, run_console_script
from nnunetv2.inference.sliding_window_prediction import compute_gaussian
from nnunetv2_dtc import compute_sdf
from nnunetv2_dtc.dataloading.batch import dtc_targets
from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.generated_trainers import write_schedule_trainer
from nnunetv2_dtc.loss import sigmoid_rampup_weight
from nnunetv2_dtc.progress import DTC_LOG_KEYS, PROGRESS_PLOT_NAME
from nnunetv2_dtc.trainer_dir import environment_with_trainers
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.trainers.nnUNetTrainerDTCBoundary import nnUNetTrainerDTCBoundary

DATASET_ID = 991
DATASET_NAME = 'Dataset991_DTCTrain'
CONFIGURATION = '3d_fullres'
EPOCHS, ITERATIONS, VAL_ITERATIONS = 2, 3, 1
NUM_LABELED, NUM_UNLABELED, NUM_TEST = 5, 3, 2  # 5 labelled: nnU-Net's 5-fold split

pytestmark = pytest.mark.slow  # subprocesses of nnU-Net's commands


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('dtc_train')
    folders = NnUNetFolders.create(root / 'nnunet')
    raw = Path(make_synthetic_dataset(str(folders.raw), DATASET_ID, name='DTCTrain', num_labeled=NUM_LABELED,
                                      num_unlabeled=NUM_UNLABELED, num_test=NUM_TEST, shape=(16, 16, 16),
                                      num_foreground_labels=2))
    trainer = write_schedule_trainer(str(root / 'trainers'), nnUNetTrainerDTC, EPOCHS, ITERATIONS, VAL_ITERATIONS)
    environment = environment_with_trainers({}, str(root / 'trainers'))
    run_console_script(folders, ['nnUNetv2_plan_and_preprocess'], '-d', DATASET_ID, '-c', CONFIGURATION, '2d',
                       '-np', 1)
    preprocess = run_console_script(folders, ['nnUNetv2_dtc_preprocess_unlabeled'], '-d', DATASET_ID,
                                    '-c', CONFIGURATION, '2d', '-np', 1)
    train = run_console_script(folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 'all', '-tr', trainer,
                               '-device', 'cpu', environment=environment)
    model = folders.results / DATASET_NAME / f'{trainer}__nnUNetPlans__{CONFIGURATION}'
    predictions = root / 'predictions'
    run_console_script(folders, ['nnUNetv2_predict'], '-i', raw / 'imagesTs', '-o', predictions, '-d', DATASET_ID,
                       '-c', CONFIGURATION, '-f', 'all', '-tr', trainer, '-device', 'cpu', '-npp', 1, '-nps', 1,
                       environment=environment)
    return SimpleNamespace(root=root, folders=folders, raw=raw, trainer=trainer, environment=environment,
                           fold=model / 'fold_all', model=model, predictions=predictions, train=train,
                           preprocess=preprocess)


def test_final_checkpoint_holds_the_dtc_network(trained):
    checkpoint = torch.load(trained.fold / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    assert checkpoint['trainer_name'] == trained.trainer
    assert checkpoint['current_epoch'] == EPOCHS
    head = checkpoint['network_weights']['decoder.seg_layers.1.conv.weight']
    assert head.shape[0] == 3 + 2  # background + 2 classes, one level set per foreground class


def test_every_epoch_logs_each_loss_term_and_lambda(trained):
    checkpoint = torch.load(trained.fold / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    logged = checkpoint['logging']
    for key in DTC_LOG_KEYS.values():
        assert len(logged[key]) == EPOCHS and all(np.isfinite(logged[key]))
    total_iterations = EPOCHS * ITERATIONS
    for epoch in range(EPOCHS):
        expected = np.mean([sigmoid_rampup_weight(epoch * ITERATIONS + i, total_iterations, 1.0)
                            for i in range(ITERATIONS)])
        assert logged['dtc_consistency_weights'][epoch] == pytest.approx(expected, rel=1e-5)
    # the total nnU-Net logs is the weighted sum of the terms, up to lambda varying inside an epoch
    for epoch in range(EPOCHS):
        parts = (logged['dtc_supervised_losses'][epoch] + 0.3 * logged['dtc_sdf_losses'][epoch])
        assert logged['train_losses'][epoch] == pytest.approx(
            parts + logged['dtc_consistency_weights'][epoch] * logged['dtc_consistency_losses'][epoch], abs=0.05)
    log_text = '\n'.join(p.read_text() for p in trained.fold.glob('training_log_*.txt'))
    lines = re.findall(r'supervised_loss \S+, sdf_loss \S+, consistency_loss \S+, consistency_weight \S+', log_text)
    assert len(lines) == EPOCHS
    assert (trained.fold / PROGRESS_PLOT_NAME).stat().st_size > 0
    assert (trained.fold / 'progress.png').stat().st_size > 0


def test_final_validation_ran_like_nnunet(trained):
    assert (trained.fold / 'validation' / 'summary.json').is_file()
    assert len(list((trained.fold / 'validation').glob('*.nii.gz'))) == NUM_LABELED


def test_predictions_have_the_input_geometry(trained):
    images = sorted((trained.raw / 'imagesTs').glob('*_0000.nii.gz'))
    assert len(images) == NUM_TEST
    for image_file in images:
        image = sitk.ReadImage(str(image_file))
        prediction = sitk.ReadImage(str(trained.predictions / image_file.name.replace('_0000.nii.gz', '.nii.gz')))
        assert prediction.GetSize() == image.GetSize()
        assert prediction.GetSpacing() == pytest.approx(image.GetSpacing())
        assert prediction.GetOrigin() == pytest.approx(image.GetOrigin())
        assert prediction.GetDirection() == pytest.approx(image.GetDirection())
        assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1, 2}


def test_training_without_preprocessed_unlabelled_data_names_the_command(trained, tmp_path):
    preprocessed = tmp_path / 'preprocessed'
    shutil.copytree(trained.folders.preprocessed, preprocessed)
    for leftover in (preprocessed / DATASET_NAME).glob('*_unlabeled*'):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    results = tmp_path / 'results'
    result = run_console_script(trained.folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 'all', '-tr',
                                trained.trainer, '-device', 'cpu', check=False,
                                environment={**trained.environment, 'nnUNet_preprocessed': str(preprocessed),
                                             'nnUNet_results': str(results)})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert 'No preprocessed unlabelled cases' in output
    assert f'nnUNetv2_dtc_preprocess_unlabeled -d {DATASET_ID} -c {CONFIGURATION}' in output
    assert not list(results.rglob('checkpoint*.pth'))


def test_trainer_dir_check_says_what_to_export(trained):
    assert 'export nnUNet_extTrainer=$(nnUNetv2_dtc_trainer_dir)' in trained.preprocess.stdout
    missing = run_console_script(trained.folders, ['nnUNetv2_dtc_trainer_dir'], '--check', check=False,
                                 environment={'nnUNet_extTrainer': '/nowhere'})
    assert missing.returncode == 1
    assert 'export nnUNet_extTrainer=$(nnUNetv2_dtc_trainer_dir)' in missing.stderr
    printed = run_console_script(trained.folders, ['nnUNetv2_dtc_trainer_dir']).stdout.strip()
    assert (Path(printed) / 'nnUNetTrainerDTC.py').is_file()
    assert sorted(p.name for p in Path(printed).glob('*.py') if p.name != '__init__.py') == \
        ['nnUNetTrainerDTC.py', 'nnUNetTrainerDTCBoundary.py', 'nnUNetTrainerDTC_BalancedSDF.py',
         'nnUNetTrainerDTC_DiceOnly.py', 'nnUNetTrainerDTC_EMATeacher.py',
         'nnUNetTrainerDTC_EMATeacherOnUnlabeled.py',
         'nnUNetTrainerDTC_LabeledOnly.py', 'nnUNetTrainerDTC_LevelSetTeacher.py', 'nnUNetTrainerDTC_MaskedSDF.py',
         'nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher.py', 'nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30.py',
         'nnUNetTrainerDTC_MirroredEMATeacher.py', 'nnUNetTrainerDTC_MoreUnlabeled.py',
         'nnUNetTrainerDTC_MultiScaleConsistency.py',
         'nnUNetTrainerDTC_NegativeBoundarySDF.py', 'nnUNetTrainerDTC_NegativeBoundarySDF_SoftView.py',
         'nnUNetTrainerDTC_NoisyEMATeacher.py', 'nnUNetTrainerDTC_ShortRamp.py', 'nnUNetTrainerDTC_Xepochs.py']
    ok = run_console_script(trained.folders, ['nnUNetv2_dtc_trainer_dir'], '--check',
                            environment={'nnUNet_extTrainer': printed})
    assert 'is set up' in ok.stdout


def test_vanilla_export_predicts_identically_with_stock_nnunet(trained, tmp_path):
    exported = tmp_path / 'vanilla_model'
    run_console_script(trained.folders, ['nnUNetv2_dtc_export_vanilla'], '-d', DATASET_ID, '-c', CONFIGURATION,
                       '-f', 'all', '-tr', trained.trainer, '-o', exported)
    checkpoint = torch.load(exported / 'fold_all' / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    assert checkpoint['trainer_name'] == 'nnUNetTrainer' and checkpoint['optimizer_state'] is None
    assert checkpoint['network_weights']['decoder.seg_layers.1.weight'].shape[0] == 3
    assert 'dtc_num_level_set_channels' not in json.loads((exported / 'plans.json').read_text())
    stock_predictions = tmp_path / 'stock_predictions'
    environment = {k: v for k, v in trained.folders.subprocess_environment().items() if k != 'nnUNet_extTrainer'}
    completed = subprocess.run(['nnUNetv2_predict_from_modelfolder', '-i', str(trained.raw / 'imagesTs'), '-o',
                                str(stock_predictions), '-m', str(exported), '-f', 'all', '-device', 'cpu',
                                '-npp', '1', '-nps', '1'], env=environment, capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    for dtc_file in sorted(trained.predictions.glob('*.nii.gz')):
        stock = sitk.GetArrayFromImage(sitk.ReadImage(str(stock_predictions / dtc_file.name)))
        assert np.array_equal(stock, sitk.GetArrayFromImage(sitk.ReadImage(str(dtc_file))))


def test_vanilla_export_refuses_an_existing_output_and_leaves_it_alone(trained, tmp_path):
    (tmp_path / 'taken').mkdir()
    result = run_console_script(trained.folders, ['nnUNetv2_dtc_export_vanilla'], '-d', DATASET_ID, '-c',
                                CONFIGURATION, '-f', 'all', '-tr', trained.trainer, '-o', tmp_path / 'taken',
                                check=False)
    assert result.returncode == 2 and 'exists' in result.stderr
    assert not any((tmp_path / 'taken').iterdir())
    assert not list(tmp_path.glob('.taken.*'))  # no staging folder left


@pytest.mark.parametrize('num_processes', ['0', '1'])
def test_batches_mix_labelled_and_unlabelled_patches_with_sdf_of_the_augmented_labels(trained, monkeypatch,
                                                                                       num_processes):
    trained.folders.set_in(monkeypatch)
    monkeypatch.setenv('nnUNet_n_proc_DA', num_processes)
    plans = json.loads((trained.folders.preprocessed / DATASET_NAME / 'nnUNetPlans.json').read_text())
    dataset_json = json.loads((trained.folders.preprocessed / DATASET_NAME / 'dataset.json').read_text())
    trainer = nnUNetTrainerDTC({**plans, 'continue_training': False}, CONFIGURATION, 'all', dataset_json,
                               torch.device('cpu'))
    trainer.initialize()
    train_loader, val_loader = trainer.get_dataloaders()
    try:
        for _ in range(2):
            batch = next(train_loader)
            # plain tensors in lists, the structure nnU-Net's augmenter pins for a non-blocking GPU copy
            assert isinstance(batch['target'], list) and isinstance(batch['is_labeled'], torch.Tensor)
            assert all(isinstance(t, torch.Tensor) for t in batch['target'])
            targets = dtc_targets(batch, deep_supervision=True)
            b = trainer.batch_size
            assert batch['data'].shape[0] == 2 * b
            assert targets.is_labeled.tolist() == [True] * b + [False] * b
            assert [k.startswith('dtc_u') for k in batch['keys']] == [False] * b + [True] * b
            assert len(targets.segmentation) == len(trainer._get_deep_supervision_scales())
            assert targets.segmentation[0].shape[0] == b and targets.sdf.shape == (b, 2, 16, 16, 16)
            for labels, sdf in zip(targets.segmentation[0], targets.sdf):
                assert np.allclose(sdf.numpy(), compute_sdf(labels[0].numpy().astype(np.int16), [1, 2]), atol=1e-6)
            assert (targets.sdf < 0).any() and (targets.sdf > 0).any()
            validation = next(val_loader)
            assert isinstance(validation['target'], list)
    finally:
        for loader in (train_loader, val_loader):
            if hasattr(loader, '_finish'):
                loader._finish()


TEST_TRAINERS = Path(__file__).parents[1] / 'helpers' / 'dtc_test_trainers'


def _results_copy(trained, tmp_path) -> dict:
    """Environment for a training of its own in tmp_path, on the module's preprocessed data."""
    return {**environment_with_trainers({}, str(TEST_TRAINERS)), 'nnUNet_results': str(tmp_path / 'results')}


def _train_until_the_first_checkpoints_then_kill(trained, environment: dict, trainer: str) -> tuple:
    """nnUNetv2_train of `trainer` (a test schedule of 3 epochs, a checkpoint every epoch), killed once the first
    epoch's checkpoints are written; returns its fold folder, command and the interrupted checkpoint_latest.pth."""
    fold = Path(environment['nnUNet_results']) / DATASET_NAME / f'{trainer}__nnUNetPlans__{CONFIGURATION}' / 'fold_all'
    command = ['nnUNetv2_train', str(DATASET_ID), CONFIGURATION, 'all', '-tr', trainer, '-device', 'cpu']
    # its own process group, so that the kill also ends nnU-Net's data augmentation workers
    process = subprocess.Popen(command, env=trained.folders.subprocess_environment(environment),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        # the best checkpoint is written after the latest one at the end of the first epoch
        while not (fold / 'checkpoint_best.pth').is_file() and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (fold / 'checkpoint_final.pth').exists(), 'the run finished before it could be interrupted'
    interrupted = torch.load(fold / 'checkpoint_latest.pth', map_location='cpu', weights_only=False)
    assert 1 <= interrupted['current_epoch'] < 3
    return fold, command, interrupted


def test_resume_after_a_kill_continues_the_schedule_and_the_epoch_count(trained, tmp_path):
    environment = _results_copy(trained, tmp_path)
    fold, command, _ = _train_until_the_first_checkpoints_then_kill(trained, environment,
                                                                     'nnUNetTrainerDTC_TestCheckpointEveryEpoch')
    run_console_script(trained.folders, command[:1], *command[1:], '--c', environment=environment)
    final = torch.load(fold / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    assert final['current_epoch'] == 3
    weights = final['logging']['dtc_consistency_weights']
    assert len(weights) == 3 and len(final['logging']['train_losses']) == 3
    for epoch, logged in enumerate(weights):
        expected = np.mean([sigmoid_rampup_weight(epoch * 2 + i, 3 * 2, 1.0) for i in range(2)])
        assert logged == pytest.approx(expected, rel=1e-5)


def test_resumed_ema_teacher_goes_on_from_the_saved_teacher(trained, tmp_path):
    """nnUNetv2_train --c restores the teacher written beside checkpoint_latest.pth (2 updates per test epoch), and
    the end of training removes that file with checkpoint_latest.pth."""
    environment = _results_copy(trained, tmp_path)
    fold, command, interrupted = _train_until_the_first_checkpoints_then_kill(
        trained, environment, 'nnUNetTrainerDTC_EMATeacher_TestCheckpointEveryEpoch')
    teacher = torch.load(fold / 'checkpoint_latest_ema_teacher.pth', map_location='cpu')
    epoch = interrupted['current_epoch']
    assert teacher['num_updates'] == epoch * 2
    assert any(not torch.equal(teacher['network_weights'][name], weights)
               for name, weights in interrupted['network_weights'].items())

    run_console_script(trained.folders, command[:1], *command[1:], '--c', environment=environment)
    log = '\n'.join(path.read_text() for path in sorted(fold.glob('training_log_*.txt')))
    assert f'EMA teacher (decay 0.99) restored from the checkpoint at epoch {epoch}, after {epoch * 2} updates' in log
    assert (fold / 'checkpoint_final.pth').is_file() and not (fold / 'checkpoint_latest.pth').exists()
    assert not (fold / 'checkpoint_latest_ema_teacher.pth').exists()
    assert not (fold / 'checkpoint_final_ema_teacher.pth').exists()


def test_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(trained, tmp_path):
    environment = _results_copy(trained, tmp_path)
    trainer = 'nnUNetTrainerDTC_TestNonFiniteLoss'
    result = run_console_script(trained.folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 'all', '-tr',
                                trainer, '-device', 'cpu', check=False, environment=environment)
    assert result.returncode != 0
    assert 'Non-finite DTC loss at epoch 1, step 0: loss, consistency_loss' in result.stdout + result.stderr
    fold = tmp_path / 'results' / DATASET_NAME / f'{trainer}__nnUNetPlans__{CONFIGURATION}' / 'fold_all'
    kept = torch.load(fold / 'checkpoint_latest.pth', map_location='cpu', weights_only=False)
    assert kept['current_epoch'] == 1
    assert all(torch.isfinite(v).all() for v in kept['network_weights'].values())
    assert not (fold / 'checkpoint_final.pth').exists()


def test_validation_with_best_checkpoint_and_npz_works_for_dtc_models(trained):
    run_console_script(trained.folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 'all', '-tr',
                       trained.trainer, '-device', 'cpu', '--val', '--val_best', '--npz',
                       environment=trained.environment)
    validation = trained.fold / 'validation'
    assert len(list(validation.glob('*.npz'))) == NUM_LABELED
    probabilities = np.load(next(validation.glob('*.npz')))['probabilities']
    assert probabilities.shape[0] == 3  # background + 2 classes: no level-set channels leak into predictions


def _train_a_few_steps(trained, monkeypatch, tmp_path, configuration: str, dataset_json: dict):
    """nnU-Net's own epoch hooks around two DTC train steps and one validation step, in this process."""
    trained.folders.set_in(monkeypatch)
    monkeypatch.setenv('nnUNet_results', str(tmp_path / 'results'))
    monkeypatch.setenv('nnUNet_n_proc_DA', '0')
    plans = json.loads((trained.folders.preprocessed / DATASET_NAME / 'nnUNetPlans.json').read_text())
    trainer = nnUNetTrainerDTC({**plans, 'continue_training': False}, configuration, 'all', dataset_json,
                               torch.device('cpu'))
    trainer.num_epochs, trainer.num_iterations_per_epoch = 1, 2
    trainer.on_train_start()
    trainer.on_epoch_start()
    trainer.on_train_epoch_start()
    steps = [trainer.train_step(next(trainer.dataloader_train)) for _ in range(2)]
    trainer.on_train_epoch_end(steps)
    trainer.on_validation_epoch_start()
    validation = trainer.validation_step(next(trainer.dataloader_val))
    return trainer, steps, validation


def test_2d_configuration_trains_with_one_level_set_per_class(trained, monkeypatch, tmp_path):
    dataset_json = json.loads((trained.folders.preprocessed / DATASET_NAME / 'dataset.json').read_text())
    trainer, steps, validation = _train_a_few_steps(trained, monkeypatch, tmp_path, '2d', dataset_json)
    assert trainer.network.decoder.seg_layers[-1].conv.weight.ndim == 4  # Conv2d
    assert trainer.network.decoder.seg_layers[-1].conv.out_channels == 3 + 2
    for step in steps:
        assert all(np.isfinite(step[k]) for k in ('loss', 'supervised_loss', 'sdf_loss', 'consistency_loss'))
        assert step['sdf_loss'] > 0
    assert np.isfinite(validation['loss']) and len(validation['tp_hard']) == 2


def test_region_training_uses_one_sigmoid_level_set_per_region(trained, monkeypatch, tmp_path):
    dataset_json = json.loads((trained.folders.preprocessed / DATASET_NAME / 'dataset.json').read_text())
    dataset_json['labels'] = {'background': 0, 'whole': [1, 2], 'inner': [2]}
    dataset_json['regions_class_order'] = [1, 2]
    trainer, steps, validation = _train_a_few_steps(trained, monkeypatch, tmp_path, CONFIGURATION, dataset_json)
    assert trainer.label_manager.has_regions and trainer.loss.has_regions
    assert trainer.network.decoder.seg_layers[-1].conv.out_channels == 2 + 2  # 2 regions, 2 level sets
    batch = next(trainer.dataloader_train)
    targets = dtc_targets(batch, deep_supervision=True)
    whole = targets.segmentation[0][:, :1]  # regions are one-hot channels after nnU-Net's transforms
    assert np.allclose(targets.sdf[:, 0].numpy(),
                       [compute_sdf(w[0].numpy().astype(np.int16), [1])[0] for w in whole], atol=1e-6)
    assert all(np.isfinite(step['loss']) for step in steps)
    assert np.isfinite(validation['loss']) and len(validation['tp_hard']) == 2


def test_find_best_configuration_accepts_dtc_cross_validation_results(trained):
    run_console_script(trained.folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 0, '-tr', trained.trainer,
                       '-device', 'cpu', environment=trained.environment)
    run_console_script(trained.folders, ['nnUNetv2_find_best_configuration'], DATASET_ID, '-c', CONFIGURATION,
                       '-tr', trained.trainer, '-f', 0, '-np', 1, environment=trained.environment)
    inference = json.loads((trained.folders.results / DATASET_NAME / 'inference_information.json').read_text())
    assert inference['best_model_or_ensemble']['selected_model_or_models'][0]['trainer'] == trained.trainer


def test_a_boundary_trainer_trains_predicts_and_exports_through_the_stock_commands(trained, tmp_path):
    """The second auxiliary task (nnUNetTrainerDTCBoundary) through nnUNetv2_train and nnUNetv2_predict, and its
    vanilla export predicting identically with stock nnU-Net."""
    trainers = tmp_path / 'trainers'
    trainer = write_schedule_trainer(str(trainers), nnUNetTrainerDTCBoundary, 1, ITERATIONS, VAL_ITERATIONS)
    environment = {**environment_with_trainers({}, str(trainers)), 'nnUNet_results': str(tmp_path / 'results')}
    run_console_script(trained.folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 'all', '-tr', trainer,
                       '-device', 'cpu', environment=environment)
    model = tmp_path / 'results' / DATASET_NAME / f'{trainer}__nnUNetPlans__{CONFIGURATION}'
    log = next((model / 'fold_all').glob('training_log_*.txt')).read_text()
    assert re.search(r'supervised_loss -?\d\.\d+, boundary_loss \d\.\d+, consistency_loss \d\.\d+', log), log[-2000:]
    predictions = tmp_path / 'predictions'
    run_console_script(trained.folders, ['nnUNetv2_predict'], '-i', trained.raw / 'imagesTs', '-o', predictions,
                       '-d', DATASET_ID, '-c', CONFIGURATION, '-f', 'all', '-tr', trainer, '-device', 'cpu',
                       '-npp', 1, '-nps', 1, environment=environment)
    exported = tmp_path / 'vanilla_model'
    run_console_script(trained.folders, ['nnUNetv2_dtc_export_vanilla'], '-d', DATASET_ID, '-c', CONFIGURATION,
                       '-f', 'all', '-tr', trainer, '-o', exported, environment=environment)
    stock_predictions = tmp_path / 'stock_predictions'
    stock_environment = {k: v for k, v in trained.folders.subprocess_environment().items()
                         if k != 'nnUNet_extTrainer'}
    completed = subprocess.run(['nnUNetv2_predict_from_modelfolder', '-i', str(trained.raw / 'imagesTs'), '-o',
                                str(stock_predictions), '-m', str(exported), '-f', 'all', '-device', 'cpu',
                                '-npp', '1', '-nps', '1'], env=stock_environment, capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    files = sorted(predictions.glob('*.nii.gz'))
    assert len(files) == NUM_TEST
    for file in files:
        assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(stock_predictions / file.name))),
                              sitk.GetArrayFromImage(sitk.ReadImage(str(file))))


def _rank(trained, out, *extra, check=True, environment=None):
    return run_console_script(trained.folders, ['nnUNetv2_dtc_rank_unlabeled'], '-d', DATASET_ID, '-c',
                              CONFIGURATION, '-f', 'all', '-tr', trained.trainer, '-o', out, '-device', 'cpu',
                              '-np', 1, *extra, check=check, environment=environment or trained.environment)


def _direct_scores(trained, case_id: str):
    """The dual-task disagreement of one unlabelled case, computed without the ranking code: nnU-Net's preprocessor,
    the network on the whole case (it is one patch: the sliding window's Gaussian weights cancel up to the float16
    rounding of nnU-Net's accumulator, restated here because sigmoid(-1500 x) near the zero level set of a barely
    trained model turns that rounding into ~1e-3 of a score), DTC's views written out."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    plans = PlansManager(str(trained.model / 'plans.json'))
    dataset_json = json.loads((trained.model / 'dataset.json').read_text())
    configuration = plans.get_configuration(CONFIGURATION)
    data, _, _ = configuration.preprocessor_class(verbose=False).run_case(
        [str(trained.raw / 'imagesUnlabeled' / f'{case_id}_0000.nii.gz')], None, plans, configuration, dataset_json)
    assert tuple(data.shape[1:]) == tuple(configuration.patch_size)
    network = nnUNetTrainerDTC.build_network_architecture(plans, configuration, 1, 3, False)
    checkpoint = torch.load(trained.fold / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    network.load_state_dict(checkpoint['network_weights'])
    network.eval()
    network.decoder.seg_layers[-1].emit_level_set = network.decoder.seg_layers[-1].emit_in_eval = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranking subprocess (OMP_NUM_THREADS=1): the same float32 reduction order
    try:
        with torch.no_grad():
            logits = network(torch.from_numpy(data)[None])[0].float()
    finally:
        torch.set_num_threads(threads)
    gaussian = compute_gaussian(tuple(configuration.patch_size), sigma_scale=1. / 8, value_scaling_factor=10,
                                device=torch.device('cpu'))
    logits = ((logits * gaussian).half() / gaussian).float()
    probabilities = torch.softmax(logits[:3], 0)[1:]
    from_level_set = torch.sigmoid(-nnUNetTrainerDTC.level_set_sharpness * torch.tanh(logits[3:]))
    per_class = []
    for task_view, segmentation_view in zip(from_level_set, probabilities):
        considered = (task_view > 0.5) | (segmentation_view > 0.5)
        per_class.append(float((task_view - segmentation_view).abs()[considered].mean()) if considered.any() else 0.)
    return float(np.mean(per_class)), per_class


def test_ranking_scores_every_unlabelled_case_most_uncertain_first(trained, tmp_path):
    out = tmp_path / 'ranking'
    result = _rank(trained, out)
    assert 'Ranking unlabelled cases' in result.stderr  # the progress bar
    rows = list(csv.DictReader((out / 'annotation_priority.csv').open()))
    assert len(rows) == NUM_UNLABELED and list(rows[0]) == ['case', 'score', 'score_label_1', 'score_label_2',
                                                             'predicted_volume_mm3']
    scores = [float(row['score']) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert (out / 'annotation_priority.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    case = rows[0]['case']
    score, per_class = _direct_scores(trained, case)
    # the csv holds 6 significant digits
    assert float(rows[0]['score']) == pytest.approx(score, rel=1e-5)
    assert [float(rows[0][f'score_label_{i}']) for i in (1, 2)] == pytest.approx(per_class, rel=1e-5)
    # plain nnUNetv2_predict is untouched by the ranking's switch: the predictions of the module are vanilla-shaped
    assert sorted(p.name for p in trained.predictions.glob('*.nii.gz'))

    again = _rank(trained, out, check=False)
    assert again.returncode == 2 and 'annotation_priority.csv exists: pass --overwrite' in again.stderr
    assert _rank(trained, out, '--overwrite').returncode == 0


def test_ranking_refuses_a_vanilla_model_and_bad_input_and_writes_nothing(trained, tmp_path):
    results = tmp_path / 'results'
    exported = results / DATASET_NAME / 'nnUNetTrainer__nnUNetPlans__3d_fullres'
    run_console_script(trained.folders, ['nnUNetv2_dtc_export_vanilla'], '-d', DATASET_ID, '-c', CONFIGURATION,
                       '-f', 'all', '-tr', trained.trainer, '-o', exported)
    environment = {**trained.environment, 'nnUNet_results': str(results)}
    vanilla = run_console_script(trained.folders, ['nnUNetv2_dtc_rank_unlabeled'], '-d', DATASET_ID, '-c',
                                 CONFIGURATION, '-f', 'all', '-tr', 'nnUNetTrainer', '-o', tmp_path / 'out_vanilla',
                                 '-device', 'cpu', '-np', 1, check=False, environment=environment)
    assert vanilla.returncode == 2 and 'needs a DTC model folder' in vanilla.stderr, vanilla.stderr[-2000:]
    assert not (tmp_path / 'out_vanilla').exists()

    empty = tmp_path / 'empty'
    empty.mkdir()
    refused = _rank(trained, tmp_path / 'out_empty', '-i', empty, check=False)
    assert refused.returncode == 2 and 'contains no images' in refused.stderr
    wrong_ending = tmp_path / 'wrong_ending'
    wrong_ending.mkdir()
    (wrong_ending / 'case_0000.nrrd').write_bytes(b'x')
    refused = _rank(trained, tmp_path / 'out_ending', '-i', wrong_ending, check=False)
    assert refused.returncode == 2 and 'case_0000.nrrd' in refused.stderr
    assert not (tmp_path / 'out_empty').exists() and not (tmp_path / 'out_ending').exists()
