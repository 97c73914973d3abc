"""Inference: nnU-Net's predictor with the DTC network against the same weights exported without the level-set
channels (vanilla network, nnunetv2_dtc.level_set_head.vanilla_state_dict), as nnUNetv2_predict runs them.

Both networks are built the way the predictor builds them (the trainer's build_network_architecture without deep
supervision) and the predictor loads each state dict strictly (predict_logits_from_preprocessed_data), then
predicts by sliding window with Gaussian weighting and mirroring. The segmentations must be identical: equal
logits and equal argmax.
"""
import contextlib
import io
from typing import Sequence

import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from timing import AT_MOST, DEFAULT_REPEATS, DEFAULT_WARMUP, best_times, comparison, device_clock, timing_method

from nnunetv2_dtc.level_set_head import vanilla_state_dict
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

TARGET_INFERENCE_RATIO = 1.01  # issue 4: the level-set head must not slow down inference
# nnUNetv2_predict defaults
TILE_STEP_SIZE = 0.5
USE_MIRRORING = True
SEED = 0


def default_image_shape(patch_size: Sequence[int], device: torch.device) -> list:
    """cuda: one and a half patches along the first axis (two overlapping tiles, so the sliding window accumulates),
    one patch along the others. cpu: one patch (one tile, 8 mirrored forward passes), to keep to a few minutes."""
    first = patch_size[0] * 3 // 2 if device.type == 'cuda' else patch_size[0]
    return [int(first), *map(int, patch_size[1:])]


def _predictor(trainer_class, dtc_trainer: nnUNetTrainerDTC, weights: dict, device: torch.device) -> nnUNetPredictor:
    plans_manager, configuration_manager = dtc_trainer.plans_manager, dtc_trainer.configuration_manager
    label_manager = dtc_trainer.label_manager
    network = trainer_class.build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, dtc_trainer.dataset_json),
        label_manager.num_segmentation_heads, enable_deep_supervision=False)
    with contextlib.redirect_stdout(io.StringIO()):  # on cpu it prints that it does not keep results on the device
        predictor = nnUNetPredictor(tile_step_size=TILE_STEP_SIZE, use_gaussian=True, use_mirroring=USE_MIRRORING,
                                    perform_everything_on_device=True, device=device, allow_tqdm=False)
    predictor.manual_initialization(network, plans_manager, configuration_manager, [weights],
                                    dtc_trainer.dataset_json, trainer_class.__name__,
                                    dtc_trainer.inference_allowed_mirroring_axes or _all_axes(configuration_manager))
    return predictor


def _all_axes(configuration_manager) -> tuple:
    return tuple(range(len(configuration_manager.patch_size)))


def run_inference_benchmark(dtc_trainer: nnUNetTrainerDTC, device: torch.device, setting: str,
                            image_shape: Sequence[int], repeats: int = DEFAULT_REPEATS,
                            warmup: int = DEFAULT_WARMUP) -> dict:
    """`dtc_trainer`: an initialised nnUNetTrainerDTC whose network weights (level-set rows included) are used."""
    dtc_weights = {k: v.detach().cpu().clone() for k, v in dtc_trainer._unwrapped_network().state_dict().items()}
    vanilla_weights = vanilla_state_dict(dtc_weights, dtc_trainer.label_manager.num_segmentation_heads)
    dtc = _predictor(nnUNetTrainerDTC, dtc_trainer, dtc_weights, device)
    vanilla = _predictor(nnUNetTrainer, dtc_trainer, vanilla_weights, device)
    image = torch.randn((dtc_trainer.num_input_channels, *image_shape), generator=torch.Generator().manual_seed(SEED))

    logits = {}

    def predict(name: str, predictor: nnUNetPredictor) -> None:
        logits[name] = predictor.predict_logits_from_preprocessed_data(image)

    clock = device_clock(device)
    vanilla_times, dtc_times = best_times([lambda: predict('vanilla', vanilla), lambda: predict('dtc', dtc)],
                                          repeats, warmup, clock)
    logits_equal = torch.equal(logits['vanilla'], logits['dtc'])
    argmax_equal = torch.equal(logits['vanilla'].argmax(0), logits['dtc'].argmax(0))
    failure = None if logits_equal and argmax_equal else \
        f'segmentations differ: logits equal {logits_equal}, argmax equal {argmax_equal}'
    return comparison('inference', setting + f' image {"x".join(map(str, image_shape))}', 'vanilla export',
                      min(vanilla_times), 'DTC', min(dtc_times), 's', AT_MOST, TARGET_INFERENCE_RATIO,
                      method=timing_method(clock, vanilla_times, dtc_times)
                      + ('; logits and argmax identical' if failure is None else ''),
                      extra_failure=failure, logits_equal=logits_equal, argmax_equal=argmax_equal,
                      vanilla_times=vanilla_times, dtc_times=dtc_times)
