"""Where unlabelled images and their preprocessed cases live, next to nnU-Net's own folders, and the check the
trainer runs before it uses the preprocessed cases.

    $nnUNet_raw/DatasetXXX_Name/imagesUnlabeled/CASE_0000.nii.gz            raw images, named like imagesTr
    $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled/       preprocessed cases (.b2nd, _seg.b2nd, .pkl)
    $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled.json   manifest: plans fingerprint, finished cases
    $nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled.tmp/   cases being written (only during a run)

The manifest and the temporary folder sit beside the case folder, not in it: nnU-Net's `infer_dataset_class`
expects a single data file ending in a case folder.
"""
from typing import List, Optional, Tuple, Union

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id, maybe_convert_to_dataset_name
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnunetv2_dtc.unlabeled_handling.case_storage import is_case_complete
from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError, preprocess_command
from nnunetv2_dtc.unlabeled_handling.manifest import CASES_KEY, FINGERPRINT_KEY, INPUTS_KEY, PLANS_IDENTIFIER_KEY, \
    differing_inputs, fingerprint, preprocessing_inputs, read_manifest

UNLABELED_IMAGES_FOLDER_NAME = 'imagesUnlabeled'
UNLABELED_FOLDER_SUFFIX = '_unlabeled'
MANIFEST_SUFFIX = '.json'
TEMPORARY_FOLDER_SUFFIX = '.tmp'


def _require(variable) -> None:
    if not variable.is_set():
        raise UnlabeledDataError(f'The environment variable {variable.env_var_name} is not set. See nnU-Net\'s '
                                 f'documentation/setting_up_paths.md.')


def dataset_name_from(dataset_name_or_id: Union[int, str]) -> str:
    _require(nnUNet_preprocessed)
    try:
        return maybe_convert_to_dataset_name(dataset_name_or_id)
    except RuntimeError as e:
        raise UnlabeledDataError(f'No dataset with ID {dataset_name_or_id} in nnUNet_raw ({nnUNet_raw.get()}) or '
                                 f'nnUNet_preprocessed ({nnUNet_preprocessed.get()}).') from e


def raw_dataset_folder(dataset_name: str) -> str:
    _require(nnUNet_raw)
    return join(nnUNet_raw, dataset_name)


def raw_unlabeled_images_folder(dataset_name: str) -> str:
    return join(raw_dataset_folder(dataset_name), UNLABELED_IMAGES_FOLDER_NAME)


def preprocessed_dataset_json_file(dataset_name: str) -> str:
    return join(nnUNet_preprocessed, dataset_name, 'dataset.json')


def plans_file(dataset_name: str, plans_identifier: str) -> str:
    return join(nnUNet_preprocessed, dataset_name, plans_identifier + '.json')


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


def verify_unlabeled_folder(dataset_name: str, plans_manager: PlansManager, configuration_name: str,
                            dataset_json: Optional[dict] = None) -> Tuple[str, List[str]]:
    """(folder, identifiers) of the preprocessed unlabelled cases for these plans and configuration. Raises
    UnlabeledDataError, naming the command that fixes it, if there are none, if they were preprocessed with other
    plans, or if a listed case is incomplete. dataset_json defaults to the one in nnUNet_preprocessed."""
    if dataset_json is None:
        dataset_json = load_json(preprocessed_dataset_json_file(dataset_name))
    folder = unlabeled_folder_for(dataset_name, plans_manager.get_configuration(configuration_name).data_identifier)
    command = preprocess_command(convert_dataset_name_to_id(dataset_name), configuration_name,
                                 plans_manager.plans_name)
    manifest = read_manifest(manifest_file(folder))
    if not isdir(folder) or manifest is None or not manifest[CASES_KEY]:
        raise UnlabeledDataError(
            f'No preprocessed unlabelled cases in {folder} (or no manifest {manifest_file(folder)}). Put the '
            f'unlabelled images in $nnUNet_raw/{dataset_name}/{UNLABELED_IMAGES_FOLDER_NAME} and run `{command}`.')

    current_inputs = preprocessing_inputs(plans_manager, configuration_name, dataset_json)
    if manifest[FINGERPRINT_KEY] != fingerprint(current_inputs):
        differences = ', '.join(differing_inputs(manifest.get(INPUTS_KEY, {}), current_inputs)) or 'unknown'
        raise UnlabeledDataError(
            f'The unlabelled cases in {folder} do not match the plans being trained: they were preprocessed with '
            f'plans {manifest.get(PLANS_IDENTIFIER_KEY)!r} that differ in: {differences}. Run `{command}` (it redoes '
            f'all cases when the plans changed; add --overwrite to force it).')

    incomplete = [case_id for case_id in manifest[CASES_KEY] if not is_case_complete(folder, case_id)]
    if incomplete:
        raise UnlabeledDataError(f'{len(incomplete)} unlabelled case(s) listed in {manifest_file(folder)} are '
                                 f'incomplete in {folder} (e.g. {incomplete[0]}). Run `{command}` to redo them.')
    return folder, list(manifest[CASES_KEY])
