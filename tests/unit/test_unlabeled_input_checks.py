"""Checks of a folder of raw unlabelled images against the dataset, before anything is preprocessed."""
import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.unlabeled_handling.input_checks import find_unlabeled_cases

SHAPE = (16, 16, 16)


def test_missing_channel_of_a_two_channel_dataset(tmp_path):
    dataset_json = {'channel_names': {'0': 'T1', '1': 'T2'}, 'file_ending': '.nii.gz'}
    sitk.WriteImage(sitk.GetImageFromArray(np.ones(SHAPE, dtype=np.float32)), str(tmp_path / 'case_0000.nii.gz'),
                    True)
    with pytest.raises(UnlabeledDataError, match=r'channel file case_0001.nii.gz is missing \(the dataset has 2 '
                                                 r'channel\(s\): _0000=T1, _0001=T2\)'):
        find_unlabeled_cases(str(tmp_path), dataset_json, [], num_processes=1)
