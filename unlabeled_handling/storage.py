"""One preprocessed unlabelled case on disk: written whole or not visible, and checked before it is reused.

A case is written by the preprocessor into `<staging folder>/<case>/` (on the same file system) and then moved into
the unlabelled folder with os.replace, the .pkl last: a case without its .pkl is unfinished and gets redone.
"""
import os
import shutil
from typing import Dict, List

import blosc2
from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_pickle, maybe_mkdir_p, write_pickle
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

# nnUNetDatasetBlosc2's files of one case, in the order they are moved into place (the .pkl marks a finished case)
DATA_SUFFIX, SEG_SUFFIX, PROPERTIES_SUFFIX = '.b2nd', '_seg.b2nd', '.pkl'
CASE_FILE_SUFFIXES = (DATA_SUFFIX, SEG_SUFFIX, PROPERTIES_SUFFIX)
CLASS_LOCATIONS_KEY = 'class_locations'


def empty_class_locations(plans_manager: PlansManager, dataset_json: dict) -> Dict:
    """The class_locations nnU-Net's loader reads, with the keys the preprocessor uses for labelled cases but no
    voxels: the loader then crops unlabelled patches at random (no foreground oversampling)."""
    label_manager = plans_manager.get_label_manager(dataset_json)
    keys = list(label_manager.foreground_regions if label_manager.has_regions else label_manager.foreground_labels)
    if label_manager.has_ignore_label:
        keys.append([-1] + label_manager.all_labels)
    return {tuple(k) if isinstance(k, (tuple, list)) else k: [] for k in keys}


def preprocess_case(case_id: str, image_files: List[str], unlabeled_folder: str, staging_folder: str,
                    preprocessor: DefaultPreprocessor, plans_manager: PlansManager,
                    configuration_manager: ConfigurationManager, dataset_json: dict, class_locations: Dict) -> str:
    """Runs the dataset's preprocessor without a segmentation (the seg file holds nnU-Net's nonzero mask) and moves
    the finished case into unlabeled_folder. Runs in a worker process."""
    staging = join(staging_folder, case_id)
    shutil.rmtree(staging, ignore_errors=True)
    maybe_mkdir_p(staging)
    try:
        preprocessor.run_case_save(join(staging, case_id), image_files, None, plans_manager, configuration_manager,
                                   dataset_json)
    except Exception as e:
        raise RuntimeError(f'Preprocessing the unlabelled case {case_id} ({image_files}) failed. The cases finished '
                           f'so far are kept; rerun to continue.') from e
    properties = load_pickle(join(staging, case_id + PROPERTIES_SUFFIX))
    properties[CLASS_LOCATIONS_KEY] = class_locations
    write_pickle(properties, join(staging, case_id + PROPERTIES_SUFFIX))
    for suffix in CASE_FILE_SUFFIXES:
        os.replace(join(staging, case_id + suffix), join(unlabeled_folder, case_id + suffix))
    os.rmdir(staging)
    return case_id


def is_case_complete(unlabeled_folder: str, case_id: str) -> bool:
    """All three files there, the properties load and have class_locations, and data and seg open with the same
    spatial shape."""
    files = [join(unlabeled_folder, case_id + suffix) for suffix in CASE_FILE_SUFFIXES]
    if not all(isfile(f) for f in files):
        return False
    try:
        properties = load_pickle(files[2])
        data = blosc2.open(urlpath=files[0], mode='r')
        seg = blosc2.open(urlpath=files[1], mode='r')
    except Exception:
        return False
    return CLASS_LOCATIONS_KEY in properties and data.shape[1:] == seg.shape[1:]


def stored_case_ids(unlabeled_folder: str) -> List[str]:
    """Ids of all cases with any file in the folder, finished or not."""
    if not os.path.isdir(unlabeled_folder):
        return []
    ids = set()
    for name in os.listdir(unlabeled_folder):
        for suffix in sorted(CASE_FILE_SUFFIXES, key=len, reverse=True):
            if name.endswith(suffix):
                ids.add(name[:-len(suffix)])
                break
    return sorted(ids)


def remove_case(unlabeled_folder: str, case_id: str) -> None:
    for suffix in reversed(CASE_FILE_SUFFIXES):
        file = join(unlabeled_folder, case_id + suffix)
        if isfile(file):
            os.remove(file)
