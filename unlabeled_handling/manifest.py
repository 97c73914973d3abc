"""The manifest of a preprocessed unlabelled folder: which plans produced it and which cases are finished."""
import json
from typing import List, Optional

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.utilities.files import json_sha256, read_json_or_none, write_json_atomic

# resolved configuration entries that do not change what the preprocessor writes. nnU-Net's own example
# configuration 3d_fullres_bs4 inherits 3d_fullres and its data_identifier and changes only batch_size: both must
# accept the same preprocessed folder. Any other entry (also one a custom preprocessor might read) is fingerprinted.
TRAINING_ONLY_CONFIGURATION_KEYS = (
    'architecture', 'batch_size', 'batch_dice', 'patch_size', 'median_image_size_in_voxels', 'inherits_from',
    'next_stage', 'previous_stage', 'resampling_fn_probabilities', 'resampling_fn_probabilities_kwargs',
)
# dataset.json entries the preprocessed images depend on (channels and reading). Labels and regions only name the
# keys of the empty class_locations, which the DTC loader never reads (unlabelled patches are random crops), so a
# switch to region training keeps the unlabelled data.
DATASET_JSON_KEYS = ('channel_names', 'modality', 'file_ending')

PLANS_IDENTIFIER_KEY = 'plans_identifier'
CONFIGURATION_KEY = 'configuration'
DATA_IDENTIFIER_KEY = 'data_identifier'
FINGERPRINT_KEY = 'fingerprint'
INPUTS_KEY = 'preprocessing_inputs'
CASES_KEY = 'case_identifiers'


def preprocessing_inputs(plans_manager: PlansManager, configuration_name: str, dataset_json: dict) -> dict:
    """Everything in the plans and dataset.json that determines the preprocessed unlabelled data, as plain JSON."""
    configuration = plans_manager.get_configuration(configuration_name).configuration
    inputs = {
        'configuration': {k: v for k, v in configuration.items() if k not in TRAINING_ONLY_CONFIGURATION_KEYS},
        'transpose_forward': plans_manager.transpose_forward,
        'foreground_intensity_properties_per_channel': plans_manager.foreground_intensity_properties_per_channel,
        'image_reader_writer': plans_manager.plans.get('image_reader_writer'),
        'dataset_json': {k: dataset_json[k] for k in DATASET_JSON_KEYS if k in dataset_json},
    }
    return json.loads(json.dumps(inputs))


def fingerprint(inputs: dict) -> str:
    return json_sha256(inputs)


def differing_inputs(recorded: dict, current: dict) -> List[str]:
    """Names of the entries that differ, one level deep (e.g. 'configuration.spacing')."""
    differences = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += [f'{key}.{k}' for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            differences.append(key)
    return differences


def read_manifest(file: str) -> Optional[dict]:
    """The manifest, or None if there is none (it is only ever replaced whole, so it is never half written)."""
    return read_json_or_none(file)


def write_manifest(file: str, plans_identifier: str, configuration_name: str, data_identifier: str,
                   inputs: dict, case_identifiers: List[str]) -> None:
    manifest = {
        PLANS_IDENTIFIER_KEY: plans_identifier,
        CONFIGURATION_KEY: configuration_name,
        DATA_IDENTIFIER_KEY: data_identifier,
        FINGERPRINT_KEY: fingerprint(inputs),
        CASES_KEY: sorted(case_identifiers),
        INPUTS_KEY: inputs,
    }
    write_json_atomic(file, manifest)
