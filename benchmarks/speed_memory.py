"""Peak memory of one training step, DTC (B + B) against vanilla (2B labelled), on the step benchmark's trainers.

cuda: torch.cuda.max_memory_allocated over the step (absolute, as the issue asks).
cpu: torch has no CPU peak counter, so the step runs under torch.profiler with profile_memory=True and the peak is
the largest running sum of the CPU allocator's allocation and free events during the step: the most tensor memory
the step itself held at once (activations, gradients, loss intermediates), the CPU counterpart of
max_memory_allocated minus what was allocated before the step. Parameters, optimizer state and the batch, which
existed before, are not in it, so it is the stricter comparison. Both steps run once untimed first.
"""
import contextlib
import os
import sys

import torch
from speed_step import StepSetup
from timing import AT_MOST, comparison
from torch.profiler import ProfilerActivity, profile

TARGET_MEMORY_RATIO = 1.05  # issue 4
MEMORY_EVENT = '[memory]'
MIB = 2 ** 20
CUDA_METHOD = 'torch.cuda.max_memory_allocated'
CPU_METHOD = 'peak tensor memory allocated within the step, torch.profiler profile_memory'


@contextlib.contextmanager
def _native_stderr_silenced():
    """The profiler's C++ side writes to file descriptor 2 (start/stop lines, a GPU probe on machines without one,
    a warning about frees of tensors allocated before it started); none of it concerns the figure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, 'w') as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_step_memory(step, device: torch.device) -> float:
    """Bytes, see the module docstring."""
    step()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated())
    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = sorted((e for e in profiler.profiler.kineto_results.events() if e.name() == MEMORY_EVENT),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return float(peak)


def run_memory_benchmark(setup: StepSetup, device: torch.device, setting: str) -> dict:
    vanilla = peak_step_memory(setup.vanilla_step, device)
    dtc = peak_step_memory(setup.dtc_step, device)
    b = setup.batch_size
    return comparison('memory', setting, f'vanilla ({2 * b} labelled)', vanilla / MIB, f'DTC ({b}+{b})', dtc / MIB,
                      'MiB', AT_MOST, TARGET_MEMORY_RATIO,
                      method=CUDA_METHOD if device.type == 'cuda' else CPU_METHOD,
                      vanilla_bytes=vanilla, dtc_bytes=dtc)
