"""Training step: nnUNetTrainerDTC.train_step on B labelled + B unlabelled patches against nnUNetTrainer.train_step
on 2B labelled patches, same network configuration and patch size.

Both trainers are nnU-Net's real classes, initialised as nnUNetv2_train does (network, SGD, nnU-Net's loss, DTC's
loss around it), so each step is exactly what nnU-Net runs per iteration: forward, loss, backward, gradient
clipping, optimizer step and the loss read-back.
"""
from typing import NamedTuple

import torch
from nnunet_trainers import initialized_trainer
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from step_batches import dtc_batch, vanilla_batch
from synthetic_plans import CONFIGURATION
from timing import AT_MOST, DEFAULT_REPEATS, DEFAULT_WARMUP, best_times, comparison, device_clock, timing_method

from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

TARGET_STEP_RATIO = 1.05  # issue 4: a DTC step costs at most 5 % more than a vanilla step with as many patches


class StepSetup(NamedTuple):
    vanilla: nnUNetTrainer
    vanilla_batch: dict
    dtc: nnUNetTrainerDTC
    dtc_batch: dict

    @property
    def batch_size(self) -> int:
        return self.dtc.batch_size

    def vanilla_step(self) -> dict:
        return self.vanilla.train_step(self.vanilla_batch)

    def dtc_step(self) -> dict:
        return self.dtc.train_step(self.dtc_batch)


def step_setup(plans: dict, dataset_json: dict, device: torch.device) -> StepSetup:
    """The vanilla trainer with 2B labelled patches and the DTC trainer with B + B (B: the plans' batch size)."""
    batch_size = plans['configurations'][CONFIGURATION]['batch_size']
    vanilla = initialized_trainer(nnUNetTrainer, with_batch_size(plans, 2 * batch_size), CONFIGURATION,
                                  dataset_json, device)
    dtc = initialized_trainer(nnUNetTrainerDTC, plans, CONFIGURATION, dataset_json, device)
    return StepSetup(vanilla, vanilla_batch(vanilla, 2 * batch_size), dtc, dtc_batch(dtc, batch_size, batch_size))


def run_step_benchmark(setup: StepSetup, device: torch.device, setting: str, repeats: int = DEFAULT_REPEATS,
                       warmup: int = DEFAULT_WARMUP) -> dict:
    clock = device_clock(device)
    vanilla_times, dtc_times = best_times([setup.vanilla_step, setup.dtc_step], repeats, warmup, clock)
    b = setup.batch_size
    return comparison('step', setting, f'vanilla ({2 * b} labelled)', min(vanilla_times), f'DTC ({b}+{b})',
                      min(dtc_times), 's', AT_MOST, TARGET_STEP_RATIO,
                      method=timing_method(clock, vanilla_times, dtc_times),
                      vanilla_times=vanilla_times, dtc_times=dtc_times)


def with_batch_size(plans: dict, batch_size: int) -> dict:
    configuration = {**plans['configurations'][CONFIGURATION], 'batch_size': batch_size}
    return {**plans, 'configurations': {**plans['configurations'], CONFIGURATION: configuration}}
