"""Interleaved best-of-N timing and the result record every speed benchmark returns (and prints as one line)."""
import time
from typing import Callable, List, NamedTuple, Optional, Sequence

import torch

# timed runs per side: on 2 shared cores the CPU time of one identical step varied by up to 30 %; the best of 15
# settled within 1 %, the best of 5 did not, and the best of 9 gave step ratios from 0.96 to 1.055 on the same code
DEFAULT_REPEATS = 15
DEFAULT_WARMUP = 2
AT_MOST, AT_LEAST = '<=', '>='


class Clock(NamedTuple):
    now: Callable[[], float]
    synchronize: Callable[[], None]
    description: str


WALL_CLOCK = Clock(time.perf_counter, lambda: None, 'wall time')


def device_clock(device: torch.device) -> Clock:
    """cuda: wall time between synchronisations. cpu: the process's CPU time, which time slices lost to other jobs on
    shared cores do not inflate (wall time measured +-20 % between identical runs on a loaded 2-core machine)."""
    if device.type == 'cuda':
        return Clock(time.perf_counter, torch.cuda.synchronize, 'wall time')
    return Clock(time.process_time, lambda: None, 'process CPU time')


def in_round_order(items: Sequence, round_index: int) -> list:
    """`items` in the order of timing round `round_index`: as given in even rounds, reversed in odd ones. The call
    that follows another one finds the allocator and caches in the other's state, which alone moved nnU-Net's
    predictor by 3 % on CPU; flipping the order every round spreads that over both sides."""
    return list(items) if round_index % 2 == 0 else list(items)[::-1]


def best_times(functions: Sequence[Callable[[], object]], repeats: int = DEFAULT_REPEATS,
               warmup: int = DEFAULT_WARMUP, clock: Clock = WALL_CLOCK) -> List[List[float]]:
    """Every timing of each function, after `warmup` untimed calls each. The calls interleave, so load from other
    jobs on the machine affects all functions alike, in an order that flips every round (`in_round_order`). The
    best (least disturbed) timing is what to compare."""
    for _ in range(warmup):
        for function in functions:
            function()
            clock.synchronize()
    times: List[List[float]] = [[] for _ in functions]
    for round_index in range(repeats):
        for function, function_times in in_round_order(zip(functions, times), round_index):
            clock.synchronize()
            start = clock.now()
            function()
            clock.synchronize()
            function_times.append(clock.now() - start)
    return times


def comparison(benchmark: str, setting: str, baseline_label: str, baseline: float, candidate_label: str,
               candidate: float, unit: str, direction: str, target: float, method: str = '',
               extra_failure: Optional[str] = None, **details) -> dict:
    """The record of one target: candidate / baseline against `target` (`direction` AT_MOST or AT_LEAST).
    `extra_failure` (e.g. 'segmentations differ') fails the target whatever the ratio; `details` are kept for
    --json. `line` is the printable summary."""
    ratio = candidate / baseline
    passed = (ratio <= target if direction == AT_MOST else ratio >= target) and extra_failure is None
    line = (f'{benchmark:<9} {setting}: {baseline_label} {_format(baseline)} {unit}, {candidate_label} '
            f'{_format(candidate)} {unit}, ratio {ratio:.3f} (target {direction} {target:g}) '
            f'{"PASS" if passed else "FAIL"}')
    if method:
        line += f' [{method}]'
    if extra_failure is not None:
        line += f' ({extra_failure})'
    return dict(benchmark=benchmark, setting=setting, baseline_label=baseline_label, baseline=baseline,
                candidate_label=candidate_label, candidate=candidate, unit=unit, ratio=ratio, direction=direction,
                target=target, passed=passed, method=method, line=line, **details)


def paired_ratio(baseline_times: Sequence[float], candidate_times: Sequence[float]) -> float:
    """Median of candidate / baseline over the interleaved pairs (runs i of both, back to back): a second estimate
    beside the ratio of the bests, less sensitive to one lucky run."""
    ratios = sorted(c / b for b, c in zip(baseline_times, candidate_times))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2


def timing_method(clock: Clock, baseline_times: Sequence[float], candidate_times: Sequence[float]) -> str:
    return (f'{clock.description}, best of {len(baseline_times)}, interleaved; median paired ratio '
            f'{paired_ratio(baseline_times, candidate_times):.3f}')


def _format(value: float) -> str:
    return f'{value:.3f}' if abs(value) < 100 else f'{value:.1f}'
