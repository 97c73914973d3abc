"""What a finished run's checkpoint tells besides its weights: the training curves nnU-Net logged per epoch (with the
DTC terms where present), the time per epoch, and the number of parameters of the network the predictor rebuilds."""
from typing import Dict, List

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import join, load_json
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.benchmark.metrics import STD_DDOF
from nnunetv2_dtc.benchmark.settings import trainer_class
from nnunetv2_dtc.benchmark.training import BenchmarkRun
from nnunetv2_dtc.progress import DTC_LOG_KEYS

EPOCH_START_KEY, EPOCH_END_KEY = 'epoch_start_timestamps', 'epoch_end_timestamps'  # nnU-Net's logger
CURVE_KEYS = ('train_losses', 'val_losses', *DTC_LOG_KEYS.values())


def model_info(run: BenchmarkRun) -> dict:
    """{'curves': {key: per-epoch values} for the logged keys of CURVE_KEYS, 'epoch_seconds': {'mean', 'std',
    'per_epoch'}, 'parameters'} of the run's final checkpoint."""
    checkpoint = torch.load(run.checkpoint, map_location='cpu', weights_only=False)
    logging = checkpoint['logging']
    curves = {key: [float(v) for v in logging[key]] for key in CURVE_KEYS if logging.get(key)}
    return {'curves': curves, 'epoch_seconds': epoch_seconds(logging),
            'parameters': parameter_count(run, checkpoint['init_args']['configuration'],
                                          checkpoint['network_weights'])}


def epoch_seconds(logging: Dict[str, List[float]]) -> dict:
    """Wall time of each epoch (end minus start timestamp, as nnU-Net logs them), its mean and spread."""
    durations = [float(end - start) for start, end in zip(logging[EPOCH_START_KEY], logging[EPOCH_END_KEY])]
    return {'mean': float(np.mean(durations)) if durations else None,
            'std': float(np.std(durations, ddof=STD_DDOF)) if durations else None, 'per_epoch': durations}


def parameter_count(run: BenchmarkRun, configuration: str, network_weights: dict) -> int:
    """Parameters of the network built as nnU-Net's predictor builds it (the base trainer's
    build_network_architecture from the model folder's plans.json and dataset.json), after checking that the
    checkpoint's weights load into it strictly."""
    plans_manager = PlansManager(join(run.model_folder, 'plans.json'))
    dataset_json = load_json(join(run.model_folder, 'dataset.json'))
    configuration_manager = plans_manager.get_configuration(configuration)
    network = trainer_class(run.method).build_network_architecture(
        plans_manager, configuration_manager, determine_num_input_channels(plans_manager, configuration_manager,
                                                                           dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads, enable_deep_supervision=False)
    network.load_state_dict(network_weights)
    return int(sum(p.numel() for p in network.parameters()))
