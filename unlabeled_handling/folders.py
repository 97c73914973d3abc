"""Where unlabelled images and their preprocessed cases live, next to nnU-Net's own folders.

    $nnUNet_raw/DatasetXXX_Name/imagesUnlabeled/CASE_0000.nii.gz            raw images, named like imagesTr
    $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled/       preprocessed cases (.b2nd, _seg.b2nd, .pkl)
    $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled.json   manifest: plans fingerprint, finished cases
    $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled.tmp/   cases being written (only during a run)

The manifest and the temporary folder sit beside the case folder, not in it: nnU-Net's `infer_dataset_class`
expects a single data file ending in a case folder.
"""
from typing import Union

from batchgenerators.utilities.file_and_folder_operations import isfile, join
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.utilities.nnunet_paths import plans_file, required_folder, resolve_dataset_name

UNLABELED_IMAGES_FOLDER_NAME = 'imagesUnlabeled'
UNLABELED_FOLDER_SUFFIX = '_unlabeled'
MANIFEST_SUFFIX = '.json'
TEMPORARY_FOLDER_SUFFIX = '.tmp'


def dataset_name_from(dataset_name_or_id: Union[int, str]) -> str:
    required_folder(nnUNet_preprocessed, UnlabeledDataError)
    return resolve_dataset_name(dataset_name_or_id, UnlabeledDataError)


def raw_dataset_folder(dataset_name: str) -> str:
    return join(required_folder(nnUNet_raw, UnlabeledDataError), dataset_name)


def raw_unlabeled_images_folder(dataset_name: str) -> str:
    return join(raw_dataset_folder(dataset_name), UNLABELED_IMAGES_FOLDER_NAME)


def preprocessed_dataset_json_file(dataset_name: str) -> str:
    return join(nnUNet_preprocessed, dataset_name, 'dataset.json')


def load_plans_manager(dataset_name: str, plans_identifier: str) -> PlansManager:
    file = plans_file(dataset_name, plans_identifier)
    if not isfile(file):
        raise UnlabeledDataError(f'Plans file {file} not found. Run `nnUNetv2_plan_and_preprocess -d '
                                 f'{convert_dataset_name_to_id(dataset_name)}` first (or pass -p with the plans '
                                 f'identifier you train with).')
    return PlansManager(file)


def unlabeled_folder_for(dataset_name: str, data_identifier: str) -> str:
    return join(nnUNet_preprocessed, dataset_name, data_identifier + UNLABELED_FOLDER_SUFFIX)


def unlabeled_preprocessed_folder(dataset_name_or_id: Union[int, str], plans_identifier: str,
                                  configuration: str) -> str:
    """The folder with the preprocessed unlabelled cases for this plans identifier and configuration."""
    dataset_name = dataset_name_from(dataset_name_or_id)
    plans_manager = load_plans_manager(dataset_name, plans_identifier)
    return unlabeled_folder_for(dataset_name, configuration_manager_from(plans_manager, configuration).data_identifier)


def configuration_manager_from(plans_manager: PlansManager, configuration: str) -> ConfigurationManager:
    if configuration not in plans_manager.available_configurations:
        raise UnlabeledDataError(f'Configuration {configuration!r} is not in the plans {plans_manager.plans_name} of '
                                 f'{plans_manager.dataset_name}. Available: {plans_manager.available_configurations}.')
    return plans_manager.get_configuration(configuration)


def manifest_file(unlabeled_folder: str) -> str:
    return unlabeled_folder.rstrip('/') + MANIFEST_SUFFIX


def temporary_folder(unlabeled_folder: str) -> str:
    return unlabeled_folder.rstrip('/') + TEMPORARY_FOLDER_SUFFIX
