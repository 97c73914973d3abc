"""Unlabelled preprocessing against real nnU-Net: one tiny synthetic dataset, planned and preprocessed by nnU-Net's
own command, is shared by all tests of this module."""
import json
import os
import shutil
import time
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class, nnUNetDatasetBlosc2
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from helpers.nnunet_folders import NnUNetFolders, console_script_command, run_console_script
from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.unlabeled_handling.folders import manifest_file, temporary_folder, unlabeled_preprocessed_folder
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import preprocess_unlabeled
from nnunetv2_dtc.unlabeled_handling.verify import verify_unlabeled_folder

DATASET_ID = 990
DATASET_NAME = 'Dataset990_DTCDemo'
CONFIGURATIONS = ('3d_fullres', '2d')
SHAPE = (16, 16, 16)
NUM_FOREGROUND_LABELS = 2
# a labelled image, copied into imagesUnlabeled under a new id: its preprocessing must equal nnU-Net's
LABELED_TWIN, UNLABELED_TWIN = 'dtc_000', 'twin_of_dtc_000'
UNLABELED_IDS = ['dtc_u000', 'dtc_u001', 'dtc_u002', UNLABELED_TWIN]
PREPROCESS_COMMAND = console_script_command('nnUNetv2_dtc_preprocess_unlabeled',
                                            'nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled')

pytestmark = pytest.mark.slow  # subprocesses of nnU-Net's commands


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    folders = NnUNetFolders.create(tmp_path_factory.mktemp('nnunet'))
    with pytest.MonkeyPatch.context() as monkeypatch:
        folders.set_in(monkeypatch)
        raw = Path(make_synthetic_dataset(str(folders.raw), DATASET_ID, num_labeled=3, num_unlabeled=3, num_test=1,
                                          shape=SHAPE, num_foreground_labels=NUM_FOREGROUND_LABELS))
        shutil.copy(raw / 'imagesTr' / f'{LABELED_TWIN}_0000.nii.gz',
                    raw / 'imagesUnlabeled' / f'{UNLABELED_TWIN}_0000.nii.gz')
        run_console_script(folders, ['nnUNetv2_plan_and_preprocess'], '-d', DATASET_ID, '-c', *CONFIGURATIONS,
                           '--verify_dataset_integrity', '-np', 1)
        # one process here (worker processes are tested in test_interrupted_run_is_completed, they cost seconds)
        run_console_script(folders, PREPROCESS_COMMAND, '-d', DATASET_ID, '-c', *CONFIGURATIONS, '-np', 1)
        yield SimpleNamespace(folders=folders, raw=raw, preprocessed=folders.preprocessed / DATASET_NAME,
                              plans_file=folders.preprocessed / DATASET_NAME / 'nnUNetPlans.json')


def snapshot(folder: Path) -> dict:
    """{file: modification time} of everything below folder."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob('*') if p.is_file()}


def write_image(file: Path, array: np.ndarray) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.float32)), str(file), True)


@pytest.mark.parametrize('configuration', CONFIGURATIONS)
def test_cases_are_stored_like_nnunet_cases(dataset, configuration):
    plans_manager = PlansManager(str(dataset.plans_file))
    folder, identifiers = verify_unlabeled_folder(DATASET_NAME, plans_manager, configuration)
    assert folder == unlabeled_preprocessed_folder(DATASET_ID, 'nnUNetPlans', configuration)
    assert folder == str(dataset.preprocessed / f'nnUNetPlans_{configuration}_unlabeled')
    assert sorted(identifiers) == sorted(UNLABELED_IDS)
    for case_id in UNLABELED_IDS:
        for suffix in ('.b2nd', '_seg.b2nd', '.pkl'):
            assert os.path.isfile(os.path.join(folder, case_id + suffix))
    assert os.path.isfile(manifest_file(folder)) and not os.path.exists(temporary_folder(folder))
    manifest = json.load(open(manifest_file(folder)))
    assert manifest['configuration'] == configuration and manifest['data_identifier'] == f'nnUNetPlans_{configuration}'

    assert infer_dataset_class(folder) is nnUNetDatasetBlosc2
    unlabeled = nnUNetDatasetBlosc2(folder, identifiers)
    data, seg, _, properties = unlabeled.load_case(UNLABELED_IDS[0])
    assert data.shape[1:] == seg.shape[1:]
    assert properties['class_locations'] == {label: [] for label in range(1, NUM_FOREGROUND_LABELS + 1)}
    # nnU-Net's loader reads class_locations; forced foreground sampling falls back to random crops
    configuration_manager = plans_manager.get_configuration(configuration)
    patch_size = configuration_manager.patch_size
    label_manager = plans_manager.get_label_manager(json.load(open(dataset.preprocessed / 'dataset.json')))
    loader = nnUNetDataLoader(unlabeled, 2, patch_size, patch_size, label_manager, oversample_foreground_percent=1.0)
    assert tuple(loader.generate_train_batch()['data'].shape[2:]) == tuple(patch_size)


@pytest.mark.parametrize('configuration', CONFIGURATIONS)
def test_labelled_image_preprocessed_as_unlabelled_equals_nnunet(dataset, configuration):
    unlabeled = nnUNetDatasetBlosc2(unlabeled_preprocessed_folder(DATASET_ID, 'nnUNetPlans', configuration))
    labeled = nnUNetDatasetBlosc2(str(dataset.preprocessed / f'nnUNetPlans_{configuration}'))
    ours, _, _, our_properties = unlabeled.load_case(UNLABELED_TWIN)
    nnunets, _, _, nnunet_properties = labeled.load_case(LABELED_TWIN)
    np.testing.assert_array_equal(ours[:], nnunets[:])
    for key in ('spacing', 'shape_before_cropping', 'bbox_used_for_cropping',
                'shape_after_cropping_and_before_resampling'):
        assert np.array_equal(our_properties[key], nnunet_properties[key]), key


def test_rerun_skips_finished_cases(dataset):
    before = snapshot(dataset.preprocessed)
    start = time.perf_counter()
    for configuration in CONFIGURATIONS:
        preprocess_unlabeled(DATASET_ID, configuration, num_processes=1)
    assert time.perf_counter() - start < 10  # no worker pool is started
    assert snapshot(dataset.preprocessed) == before


def test_interrupted_run_is_completed(dataset, capsys):
    folder = Path(unlabeled_preprocessed_folder(DATASET_ID, 'nnUNetPlans', '3d_fullres'))
    untouched, *interrupted = UNLABELED_IDS[:3]
    for case_id in interrupted:
        (folder / f'{case_id}.pkl').unlink()  # killed between moving the arrays and the .pkl
    leftover = Path(temporary_folder(str(folder))) / interrupted[0]
    leftover.mkdir(parents=True)
    (leftover / f'{interrupted[0]}.b2nd').write_bytes(b'half written')
    untouched_mtime = (folder / f'{untouched}.b2nd').stat().st_mtime_ns
    plans_manager = PlansManager(str(dataset.plans_file))
    with pytest.raises(UnlabeledDataError, match='2 unlabelled case.* incomplete'):
        verify_unlabeled_folder(DATASET_NAME, plans_manager, '3d_fullres')

    capsys.readouterr()
    preprocess_unlabeled(DATASET_ID, '3d_fullres', num_processes=2)  # two worker processes, one case each
    printed = capsys.readouterr()
    # the progress bar counts what the first line announces: the cases to do (the labelled reference image is not
    # one of them)
    assert f'{len(UNLABELED_IDS)} unlabelled case(s)' in printed.out and '2 to do' in printed.out
    assert 'Checking unlabelled images' in printed.err and '2/2' in printed.err and '3/3' not in printed.err

    assert all((folder / f'{case_id}.pkl').is_file() for case_id in interrupted)
    assert not os.path.exists(temporary_folder(str(folder)))
    assert (folder / f'{untouched}.b2nd').stat().st_mtime_ns == untouched_mtime
    assert sorted(verify_unlabeled_folder(DATASET_NAME, plans_manager, '3d_fullres')[1]) == sorted(UNLABELED_IDS)


def test_plans_mismatch_is_detected(dataset):
    plans = json.load(open(dataset.plans_file))
    other = deepcopy(plans)
    other['configurations']['3d_fullres']['spacing'] = [2.0, 2.0, 2.0]
    with pytest.raises(UnlabeledDataError) as error:
        verify_unlabeled_folder(DATASET_NAME, PlansManager(other), '3d_fullres')
    message = str(error.value)
    assert 'do not match the plans' in message and 'configuration.spacing' in message
    assert f'nnUNetv2_dtc_preprocess_unlabeled -d {DATASET_ID} -c 3d_fullres -p nnUNetPlans' in message

    # nnU-Net's own example: a configuration that only changes the batch size shares the preprocessed data
    same_data = deepcopy(plans)
    same_data['configurations']['3d_fullres_bs4'] = {'inherits_from': '3d_fullres', 'batch_size': 4}
    assert verify_unlabeled_folder(DATASET_NAME, PlansManager(same_data), '3d_fullres_bs4')[1]

    not_preprocessed = deepcopy(plans)
    not_preprocessed['configurations']['3d_big'] = {'inherits_from': '3d_fullres', 'data_identifier': 'big',
                                                    'spacing': [0.5, 0.5, 0.5]}
    with pytest.raises(UnlabeledDataError, match=f'No preprocessed unlabelled cases.*'
                                                 f'nnUNetv2_dtc_preprocess_unlabeled -d {DATASET_ID} -c 3d_big'):
        verify_unlabeled_folder(DATASET_NAME, PlansManager(not_preprocessed), '3d_big')


def _corrupt(folder: Path):
    (folder / 'corrupt_0000.nii.gz').write_bytes(os.urandom(2000))


def _truncated(folder: Path):
    write_image(folder / 'truncated_0000.nii.gz', np.ones(SHAPE))
    data = (folder / 'truncated_0000.nii.gz').read_bytes()
    (folder / 'truncated_0000.nii.gz').write_bytes(data[:len(data) // 2])


BAD_INPUT_FOLDERS = {
    'missing folder': (None, ['does not exist', 'imagesUnlabeled']),
    'empty folder': ({}, ['contains no images']),
    'wrong file ending': ({'dtc_u9_0000.nrrd': 'image'}, ['dtc_u9_0000.nrrd', "file ending '.nii.gz'"]),
    'not a channel file name': ({'scan.nii.gz': 'image'}, ['scan.nii.gz', 'CASE_XXXX.nii.gz']),
    'empty file': ({'dtc_u9_0000.nii.gz': b''}, ['dtc_u9_0000.nii.gz', 'empty (0 bytes)']),
    'extra channel': ({'dtc_u9_0000.nii.gz': 'image', 'dtc_u9_0001.nii.gz': 'image'},
                      ['dtc_u9_0001.nii.gz is an extra channel file', '1 channel(s)']),
    'missing channel 0': ({'dtc_u9_0001.nii.gz': 'image'}, ['channel file dtc_u9_0000.nii.gz is missing']),
    'labelled case id': ({'dtc_001_0000.nii.gz': 'image'}, ['dtc_001 is also a labelled case id']),
}


@pytest.mark.parametrize('bad', BAD_INPUT_FOLDERS, ids=list(BAD_INPUT_FOLDERS))
def test_bad_input_folder_is_refused_before_writing(dataset, tmp_path, bad):
    files, words = BAD_INPUT_FOLDERS[bad]
    input_folder = tmp_path / 'imagesUnlabeled'
    if files is not None:
        input_folder.mkdir()
        for name, content in files.items():
            if content == 'image':
                write_image(input_folder / name, np.ones(SHAPE))
            else:
                (input_folder / name).write_bytes(content)
    before = snapshot(dataset.preprocessed)
    with pytest.raises(UnlabeledDataError) as error:
        preprocess_unlabeled(DATASET_ID, '3d_fullres', num_processes=1, input_folder=str(input_folder))
    for word in words:
        assert word in str(error.value)
    assert snapshot(dataset.preprocessed) == before


def test_unreadable_or_wrong_dimensionality_images_are_refused_before_writing(dataset, tmp_path):
    input_folder = tmp_path / 'imagesUnlabeled'
    input_folder.mkdir()
    write_image(input_folder / 'good_0000.nii.gz', np.ones(SHAPE))
    _corrupt(input_folder)
    _truncated(input_folder)
    write_image(input_folder / 'flat_0000.nii.gz', np.ones(SHAPE[1:]))
    before = snapshot(dataset.preprocessed)
    with pytest.raises(UnlabeledDataError) as error:
        preprocess_unlabeled(DATASET_ID, '3d_fullres', num_processes=1, input_folder=str(input_folder))
    message = str(error.value)
    assert 'corrupt_0000.nii.gz cannot be read with SimpleITKIO' in message
    assert 'truncated_0000.nii.gz cannot be read with SimpleITKIO' in message
    assert 'flat_0000.nii.gz is 2d but the labelled images are 3d' in message
    assert 'good_0000' not in message and 'nothing was written' in message
    assert snapshot(dataset.preprocessed) == before


def test_missing_plans_dataset_or_configuration_is_refused(dataset, nnunet_env):
    with pytest.raises(UnlabeledDataError, match='Cannot use -d 991: Could not find a dataset with the ID 991'):
        preprocess_unlabeled(991, '3d_fullres')
    preprocessed_only = nnunet_env.preprocessed / 'Dataset992_PreprocessedOnly'
    preprocessed_only.mkdir()
    for file in ('nnUNetPlans.json', 'dataset.json'):
        shutil.copy(dataset.preprocessed / file, preprocessed_only / file)
    with pytest.raises(UnlabeledDataError, match='raw dataset folder .*Dataset992_PreprocessedOnly does not exist'):
        preprocess_unlabeled(992, '3d_fullres')
    with pytest.raises(UnlabeledDataError, match='Configuration .3d_lowres. is not in the plans'):
        preprocess_unlabeled(992, '3d_lowres')


def test_command_reports_errors_without_traceback(dataset, tmp_path):
    result = run_console_script(dataset.folders, PREPROCESS_COMMAND, '-d', DATASET_ID, '-c', '3d_fullres',
                                '-p', 'nnUNetResEncUNetMPlans', check=False)
    assert result.returncode == 2
    assert 'nnUNetResEncUNetMPlans.json not found' in result.stderr
    assert f'nnUNetv2_plan_and_preprocess -d {DATASET_ID}' in result.stderr
    assert 'Traceback' not in result.stderr
