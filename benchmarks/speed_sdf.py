"""Speed of ``compute_sdf`` against DTC's reference formulation on realistic label patches.

Usage: ``python benchmarks/speed_sdf.py [--repeats N] [--parallel T]``. Each method runs once to
warm up, then ``repeats`` times, interleaved in an order that flips every round
(``timing.best_times``); the best CPU time is reported (the least disturbed by other load).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdf_reference import reference_sdf  # noqa: E402
from timing import DEFAULT_REPEATS, best_times, device_clock  # noqa: E402

from nnunetv2_dtc.sdf import compute_sdf  # noqa: E402

# CPU time, not wall time: on a busy machine edt's worker thread waits for a core, which wall time would charge to
# the algorithm
CPU_CLOCK = device_clock(torch.device('cpu'))
# One thread, as in a data-loader worker (nnunetv2_dtc.sdf.DEFAULT_PARALLEL).
DEFAULT_PARALLEL = 1
TARGET_SPEEDUP = 5.0
TOLERANCE = 1e-6
# Smooth surface perturbation of the blobs: noise smoothing (voxels) and relative amplitude.
NOISE_SIGMA = 6.0
NOISE_AMPLITUDE = 0.3
SEED = 0


def blob(shape, center, radii, rng):
    """An ellipsoid whose surface is bent by smooth noise, like an organ in a label patch."""
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    radius = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii))
    noise = gaussian_filter(rng.standard_normal(shape, dtype=np.float32), NOISE_SIGMA)
    return radius + NOISE_AMPLITUDE * noise / np.abs(noise).max() < 1


def left_atrium_patch(rng):
    """DTC's LA setting: a 112x112x80 patch with one smooth blob (about a fifth of the patch)."""
    shape = (112, 112, 80)
    segmentation = np.zeros(shape, dtype=np.uint8)
    segmentation[blob(shape, (56, 56, 40), (40, 36, 28), rng)] = 1
    return segmentation, [1]


def three_class_patch(rng):
    """A 128^3 patch: an organ (1) with a nested lesion (2) and an adjacent structure (3)."""
    shape = (128, 128, 128)
    segmentation = np.zeros(shape, dtype=np.uint8)
    segmentation[blob(shape, (60, 64, 64), (42, 36, 40), rng)] = 1
    segmentation[blob(shape, (70, 60, 70), (14, 12, 16), rng)] = 2
    adjacent = blob(shape, (64, 108, 60), (50, 12, 14), rng) & (segmentation == 0)
    segmentation[adjacent] = 3
    return segmentation, [1, 2, 3]


def run_sdf_benchmark(repeats=DEFAULT_REPEATS, parallel=DEFAULT_PARALLEL):
    """Time both methods per case; one dict per case, with ``line`` the printable summary."""
    rng = np.random.default_rng(SEED)
    results = []
    for segmentation, labels in (left_atrium_patch(rng), three_class_patch(rng)):
        max_abs_diff = float(np.abs(compute_sdf(segmentation, labels, parallel=parallel)
                                    - reference_sdf(segmentation, labels)).max())
        reference_times, ours_times = best_times([lambda: reference_sdf(segmentation, labels),
                                                  lambda: compute_sdf(segmentation, labels, parallel=parallel)],
                                                 repeats, warmup=1, clock=CPU_CLOCK)
        reference_s, ours_s = min(reference_times), min(ours_times)
        speedup = reference_s / ours_s
        passed = speedup >= TARGET_SPEEDUP and max_abs_diff <= TOLERANCE
        plural = "es" if len(labels) > 1 else ""
        name = f"sdf {'x'.join(map(str, segmentation.shape))} {len(labels)} class{plural}"
        line = (f"{name}: reference {reference_s:.3f} s, ours {ours_s:.3f} s, {speedup:.1f}x faster "
                f"(target >= {TARGET_SPEEDUP:g}x) {'PASS' if passed else 'FAIL'}")
        if max_abs_diff > TOLERANCE:
            line += f" (max abs diff {max_abs_diff:.2e} > {TOLERANCE:g})"
        results.append(dict(name=name, reference_s=reference_s, ours_s=ours_s, speedup=speedup,
                            max_abs_diff=max_abs_diff, passed=passed, line=line))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, help="edt threads for ours")
    args = parser.parse_args()
    results = run_sdf_benchmark(args.repeats, args.parallel)
    for result in results:
        print(result["line"])
    return 0 if all(result["passed"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
