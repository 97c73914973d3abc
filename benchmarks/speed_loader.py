"""Data loading: batches/s of nnUNetTrainerDTC's training loader (B labelled patches with SDF targets + B unlabelled
patches) against nnUNetTrainer's (2B labelled patches), on the same preprocessed dataset.

Each loader is what its trainer's get_dataloaders builds: nnU-Net's transforms (get_training_transforms), nnU-Net's
nnUNetDataLoader (wrapped by LabeledUnlabeledDataLoader for DTC) and nnU-Net's NonDetMultiThreadedAugmenter with
`workers` processes (SingleThreadedAugmenter for 0), set through nnUNet_n_proc_DA as nnUNetv2_train does. Each round
starts a loader, drains what its workers prepared in advance (its cache and one batch per worker) so that batches
then arrive as fast as they are made, times `batches` more and stops it; rounds alternate between the two loaders
and the rate is that of all rounds together (batches / seconds). Which patches get a costly augmentation (rotation,
scaling, foreground) is random, so one round of 40 batches moved by +-15 %; pooling rounds averages that out where
the best round would favour the luckiest. The CPU time per batch (this process plus the worker processes, from
/proc) is recorded beside the rate: it separates work added by DTC from time lost waiting for cores.
"""
import contextlib
import io
import os
import threading
import time
from typing import Tuple

import torch
from nnunet_trainers import initialized_trainer
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from speed_step import with_batch_size
from synthetic_plans import CONFIGURATION
from timing import AT_LEAST, comparison, in_round_order

from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

TARGET_LOADER_RATIO = 0.9  # issue 4: DTC's loader delivers at least 90 % of vanilla's batches per second
# many short rounds, alternating, rather than a few long ones: this machine's speed drifts over tens of seconds
DEFAULT_BATCHES = 25
DEFAULT_ROUNDS = 8
WORKERS_VARIABLE = 'nnUNet_n_proc_DA'


@contextlib.contextmanager
def _workers(num_processes: int):
    saved = os.environ.get(WORKERS_VARIABLE)
    os.environ[WORKERS_VARIABLE] = str(num_processes)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(WORKERS_VARIABLE)
        else:
            os.environ[WORKERS_VARIABLE] = saved


# stopping an augmenter while its results thread receives a batch makes that thread raise one of these (the worker
# that shared the tensor is gone); batchgenerators then prints the traceback from the thread
_SHUTDOWN_ERRORS = (ConnectionResetError, EOFError, BrokenPipeError, FileNotFoundError)


def _stop(augmenter) -> None:
    if not hasattr(augmenter, '_finish'):
        return
    default_hook = threading.excepthook

    def quiet_shutdown(args):
        if not issubclass(args.exc_type, _SHUTDOWN_ERRORS):
            default_hook(args)

    threading.excepthook = quiet_shutdown
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            augmenter._finish()
    finally:
        threading.excepthook = default_hook


def _process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc/<pid>/stat, fields 14 and 15)."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _cpu_seconds(augmenter) -> float:
    """CPU time so far of this process and of the augmenter's worker processes."""
    return time.process_time() + sum(_process_cpu_seconds(p.pid) for p in getattr(augmenter, '_processes', []))


def timed_round(trainer, workers: int, batches: int) -> Tuple[float, float]:
    """(wall seconds, CPU seconds) for `batches` batches of the trainer's training loader."""
    with _workers(workers), contextlib.redirect_stdout(io.StringIO()):
        train, validation = trainer.get_dataloaders()
    _stop(validation)
    try:
        for _ in range(getattr(train, 'num_cached', 0) + workers + 1):
            next(train)
        start, start_cpu = time.perf_counter(), _cpu_seconds(train)
        for _ in range(batches):
            next(train)
        return time.perf_counter() - start, _cpu_seconds(train) - start_cpu
    finally:
        _stop(train)


def run_loader_benchmark(plans: dict, dataset_json: dict, device: torch.device, setting: str, workers: int,
                         batches: int = DEFAULT_BATCHES, rounds: int = DEFAULT_ROUNDS) -> dict:
    """`plans`: the preprocessed dataset's plans with the benchmark's patch size, batch size B and network."""
    b = plans['configurations'][CONFIGURATION]['batch_size']
    vanilla = initialized_trainer(nnUNetTrainer, with_batch_size(plans, 2 * b), CONFIGURATION, dataset_json, device)
    dtc = initialized_trainer(nnUNetTrainerDTC, plans, CONFIGURATION, dataset_json, device)
    vanilla_rounds, dtc_rounds = [], []
    for round_index in range(rounds):
        for trainer, trainer_rounds in in_round_order([(vanilla, vanilla_rounds), (dtc, dtc_rounds)], round_index):
            trainer_rounds.append(timed_round(trainer, workers, batches))
    total = rounds * batches
    vanilla_rate, dtc_rate = (total / sum(wall for wall, _ in r) for r in (vanilla_rounds, dtc_rounds))
    vanilla_cpu, dtc_cpu = (sum(cpu for _, cpu in r) / total for r in (vanilla_rounds, dtc_rounds))
    return comparison('loader', f'{setting}, {workers} workers', f'vanilla ({2 * b} labelled)', vanilla_rate,
                      f'DTC ({b}+{b}, SDF)', dtc_rate, 'batches/s', AT_LEAST, TARGET_LOADER_RATIO,
                      method=f'wall time, {rounds} rounds of {batches} batches pooled, order flipped per round; '
                             f'CPU per batch vanilla {vanilla_cpu:.3f} s, DTC {dtc_cpu:.3f} s, ratio {dtc_cpu / vanilla_cpu:.2f}',
                      vanilla_rounds=vanilla_rounds, dtc_rounds=dtc_rounds, vanilla_cpu_per_batch=vanilla_cpu,
                      dtc_cpu_per_batch=dtc_cpu)
