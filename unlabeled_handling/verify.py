"""The trainer's gate: the preprocessed unlabelled cases it may train on, or UnlabeledDataError naming the command
that fixes the folder (none there, preprocessed with other plans, or a listed case incomplete)."""
from typing import List, Optional, Tuple

from batchgenerators.utilities.file_and_folder_operations import isdir, load_json
from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError, preprocess_command
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME, manifest_file, \
    preprocessed_dataset_json_file, unlabeled_folder_for
from nnunetv2_dtc.unlabeled_handling.manifest import CASES_KEY, FINGERPRINT_KEY, INPUTS_KEY, PLANS_IDENTIFIER_KEY, \
    differing_inputs, fingerprint, preprocessing_inputs, read_manifest
from nnunetv2_dtc.unlabeled_handling.storage import is_case_complete


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
