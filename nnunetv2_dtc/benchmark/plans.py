"""The benchmark's CPU mode: a narrower network as one more configuration of the dataset's own plans.

nnU-Net's plans mechanism lets a configuration inherit another (`inherits_from`, as nnU-Net's own 3d_fullres_bs4
example does) and override single entries. The CPU configuration inherits the chosen one and overrides only the
architecture, a copy of the parent's with `features_per_stage` divided; everything else, the data_identifier too, is
inherited, so it trains on the parent's preprocessed data (labelled and unlabelled: the unlabelled manifest's
fingerprint leaves out the architecture). Every method of a benchmark trains this same configuration.
"""
import copy
import json
from typing import List, Tuple

from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.utilities.files import write_text_atomic

DEFAULT_FEATURES_DIVISOR = 4  # issue 3: a quarter of nnU-Net's widths (32..320 -> 8..80) trains in minutes on a CPU
MIN_FEATURES_PER_STAGE = 4  # issue 3; a stage planned narrower than this keeps its own width
CPU_CONFIGURATION_INFIX = '_dtcbench_cpu_div'
PLANS_JSON_INDENT = 4  # nnU-Net's save_json


class BenchmarkPlansError(ValueError):
    """Plans the CPU configuration cannot be derived from; the message says what to change."""


def cpu_configuration_name(parent_configuration: str, features_divisor: int) -> str:
    """e.g. 3d_fullres_dtcbench_cpu_div4: the divisor is in the name, so every width has its own model folders."""
    return f'{parent_configuration}{CPU_CONFIGURATION_INFIX}{features_divisor}'


def reduced_features(features_per_stage: List[int], features_divisor: int) -> List[int]:
    """Each stage's width divided (rounded down), but not below MIN_FEATURES_PER_STAGE nor above its own width."""
    return [max(f // features_divisor, min(f, MIN_FEATURES_PER_STAGE)) for f in features_per_stage]


def cpu_configuration(plans: dict, parent_configuration: str, features_divisor: int) -> dict:
    """The plans entry of the CPU configuration: inherits_from the parent, with the parent's resolved architecture
    and only features_per_stage changed."""
    if features_divisor < 1:
        raise BenchmarkPlansError(f'--features_divisor must be >= 1, got {features_divisor}. Pass e.g. 4 for a '
                                  f'quarter of the planned widths.')
    manager = PlansManager(copy.deepcopy(plans))
    if parent_configuration not in manager.available_configurations:
        raise BenchmarkPlansError(f'Configuration {parent_configuration!r} (-c) is not in the plans '
                                  f'{manager.plans_name} of {manager.dataset_name}. Available: '
                                  f'{manager.available_configurations}.')
    architecture = copy.deepcopy(manager.get_configuration(parent_configuration).configuration['architecture'])
    arch_kwargs = architecture.get('arch_kwargs', {})
    if 'features_per_stage' not in arch_kwargs:
        raise BenchmarkPlansError(f'The architecture of {parent_configuration!r} '
                                  f'({architecture.get("network_class_name")}) has no arch_kwargs.features_per_stage '
                                  f'to narrow. Run without --cpu_mode.')
    arch_kwargs['features_per_stage'] = reduced_features(arch_kwargs['features_per_stage'], features_divisor)
    return {'inherits_from': parent_configuration, 'architecture': architecture}


def add_cpu_configuration(plans_file: str, parent_configuration: str, features_divisor: int) -> Tuple[str, bool]:
    """Adds (or refreshes, when the parent was planned anew) the CPU configuration in plans_file, rewriting the file
    atomically and leaving every other configuration as it is. Returns (configuration name, whether it was
    written)."""
    plans = load_json(plans_file)
    name = cpu_configuration_name(parent_configuration, features_divisor)
    entry = cpu_configuration(plans, parent_configuration, features_divisor)
    if plans['configurations'].get(name) == entry:
        return name, False
    plans['configurations'][name] = entry
    write_text_atomic(plans_file, json.dumps(plans, indent=PLANS_JSON_INDENT) + '\n')
    return name, True
