"""nnU-Net's folders, names and dataset ids as the package's commands resolve them, each with an error that says
how to fix it."""
import os
from typing import Dict, List, Type, Union

from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw, nnUNet_results
from nnunetv2.utilities.dataset_name_id_conversion import find_candidate_datasets, maybe_convert_to_dataset_name

DEFAULT_PLANS_IDENTIFIER = 'nnUNetPlans'  # what nnUNetv2_plan_and_preprocess writes without -pl / -overwrite_plans_name
MAX_DATASET_ID = 999  # nnU-Net reads the ID from the three digits after 'Dataset'
CHANNEL_FILE_PATTERN = r'.+_\d{4}'  # nnU-Net's image file naming: CASE_XXXX<file ending>, XXXX the channel index
SETTING_UP_PATHS = 'See nnU-Net\'s documentation/setting_up_paths.md.'
NNUNET_FOLDER_VARIABLES = (nnUNet_raw, nnUNet_preprocessed, nnUNet_results)


def required_folder(variable, error_type: Type[Exception]) -> str:
    """The folder an nnU-Net variable (nnunetv2.paths.nnUNet_raw, ...) names, or error_type saying what to set."""
    if not variable.is_set():
        raise error_type(f'The environment variable {variable.env_var_name} is not set. {SETTING_UP_PATHS}')
    if not os.path.isdir(variable.get()):
        raise error_type(f'{variable.env_var_name} is {variable.get()}, which is not a folder. Set it to the folder '
                         f'holding the DatasetXXX_Name folders. {SETTING_UP_PATHS}')
    return variable.get()


def resolve_dataset_name(dataset_name_or_id: Union[int, str], error_type: Type[Exception], option: str = '-d') -> str:
    """DatasetXXX_Name of an ID or name, as nnU-Net's commands resolve it, or error_type naming the option."""
    try:
        return maybe_convert_to_dataset_name(dataset_name_or_id)
    except (RuntimeError, ValueError) as e:
        raise error_type(f'Cannot use {option} {dataset_name_or_id}: {str(e).splitlines()[0]} Give the ID or full '
                         f'name (DatasetXXX_Name) of a dataset in nnUNet_raw ({nnUNet_raw.get()}) or '
                         f'nnUNet_preprocessed ({nnUNet_preprocessed.get()}).') from e


def plans_file(dataset_name: str, plans_identifier: str) -> str:
    """Where nnU-Net keeps a dataset's plans: $nnUNet_preprocessed/DatasetXXX_Name/<plans identifier>.json."""
    return os.path.join(nnUNet_preprocessed.require(), dataset_name, plans_identifier + '.json')


def datasets_with_id(dataset_id: int) -> List[str]:
    """The dataset names that use this ID in nnUNet_raw, nnUNet_preprocessed or nnUNet_results (nnU-Net resolves an
    ID over all three, so a second name for one ID anywhere makes it refuse the dataset)."""
    return sorted({str(name) for name in find_candidate_datasets(dataset_id)})


def nnunet_folders_under(root: str) -> Dict[str, str]:
    """Creates root/nnUNet_raw, root/nnUNet_preprocessed and root/nnUNet_results and returns them as environment
    variables (for the demo, the tests and the speed benchmarks)."""
    folders = {variable.env_var_name: os.path.join(root, variable.env_var_name)
               for variable in NNUNET_FOLDER_VARIABLES}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    return folders
