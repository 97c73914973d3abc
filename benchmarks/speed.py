"""Issue 4: DTC must cost almost nothing beyond the extra unlabelled patches. One line per target, with both figures,
their ratio and the target:

    sdf        SDF targets: compute_sdf against DTC's reference formulation (speed_sdf.py)
    loader     batches/s: DTC's loader (B labelled + SDF targets, B unlabelled) >= 0.9x nnU-Net's (2B labelled)
    step       one train_step: DTC (B + B) <= 1.05x nnU-Net (2B labelled), same network and patch size
    memory     peak memory of that step <= 1.05x
    inference  nnU-Net's predictor, DTC network vs its vanilla export: time <= 1.01x, identical segmentations

Usage: python benchmarks/speed.py [--device cpu|cuda] [--patch X Y Z] [--batch B] [--features F1 F2 ...]
       [--repeats N] [--only sdf,loader,step,memory,inference] [--plans FILE --configuration C] [--json FILE]
Exit status 1 if a target fails.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
from loader_dataset import preprocessed_loader_dataset
from nnunet_trainers import temporary_nnunet_folders
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from speed_inference import default_image_shape, run_inference_benchmark
from speed_loader import DEFAULT_BATCHES, DEFAULT_ROUNDS, run_loader_benchmark
from speed_memory import run_memory_benchmark
from speed_sdf import run_sdf_benchmark
from speed_step import run_step_benchmark, step_setup
from synthetic_plans import CONFIGURATION, dataset_json, nnunet_features, plans_from_file, synthetic_plans
from timing import DEFAULT_REPEATS, DEFAULT_WARMUP

BENCHMARKS = ('sdf', 'loader', 'step', 'memory', 'inference')
DEFAULT_BATCH = 2  # DTC's 2 labelled + 2 unlabelled; nnU-Net's usual 3d_fullres batch size
DEFAULT_FOREGROUND_LABELS = 2
# cpu: small enough that all five benchmarks finish in a few minutes on 2 shared cores; the narrow network makes the
# fixed per-voxel cost of DTC's loss relatively larger than with nnU-Net's widths, so passing here is the harder test
DEFAULT_PATCH = {'cpu': [48, 48, 48], 'cuda': [128, 128, 128]}
DEFAULT_FEATURES = {'cpu': [8, 16, 32, 64], 'cuda': None}  # None: nnU-Net's 32, 64, ... 320
# cpu: one thread; on cores shared with other jobs, two OpenMP threads measured 3-5x slower and far noisier
DEFAULT_CPU_THREADS = 1
LOADER_VOLUME_PER_PATCH = 2  # loader cases are this many patches long per axis (96^3 for a 48^3 patch)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--patch', type=int, nargs=3, metavar=('X', 'Y', 'Z'),
                        help=f'patch size; default {DEFAULT_PATCH["cpu"]} on cpu, {DEFAULT_PATCH["cuda"]} on cuda '
                             f'(with --plans: the configuration\'s)')
    parser.add_argument('--batch', type=int, help=f'B: labelled patches per DTC batch (as many unlabelled; vanilla '
                                                  f'gets 2B labelled). Default {DEFAULT_BATCH} (with --plans: the '
                                                  f'configuration\'s)')
    parser.add_argument('--features', type=int, nargs='+', help=f'features per stage (the last repeats); default '
                                                                f'{DEFAULT_FEATURES["cpu"]} on cpu, nnU-Net\'s on cuda')
    parser.add_argument('--labels', type=int, default=DEFAULT_FOREGROUND_LABELS, help='foreground classes')
    parser.add_argument('--repeats', type=int, default=DEFAULT_REPEATS, help='timed runs per side (best counts)')
    parser.add_argument('--warmup', type=int, default=DEFAULT_WARMUP, help='untimed runs per side first')
    parser.add_argument('--only', default=','.join(BENCHMARKS),
                        help='comma-separated subset of ' + ','.join(BENCHMARKS))
    parser.add_argument('--plans', help='take the network, patch and batch size from this nnU-Net plans file')
    parser.add_argument('--configuration', default=CONFIGURATION, help='configuration in --plans')
    parser.add_argument('--workers', type=int, help='data augmentation processes for both loaders, 0: in the main '
                                                    'process. Default: nnU-Net\'s (nnUNet_n_proc_DA or its table)')
    parser.add_argument('--loader-batches', type=int, default=DEFAULT_BATCHES, help='timed batches per round')
    parser.add_argument('--loader-rounds', type=int, default=DEFAULT_ROUNDS, help='rounds per loader')
    parser.add_argument('--inference-image', type=int, nargs=3, metavar=('X', 'Y', 'Z'),
                        help='preprocessed image size to predict; default 1.5 patches along the first axis')
    parser.add_argument('--threads', type=int, help=f'torch threads; default {DEFAULT_CPU_THREADS} on cpu, '
                                                    f'torch\'s on cuda')
    parser.add_argument('--json', help='also write the settings and every result to this file')
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(',') if name.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f'--only: unknown {sorted(unknown)}; choose from {",".join(BENCHMARKS)}')
    return args


def training_plans(args) -> dict:
    if args.plans is not None:
        return plans_from_file(args.plans, args.configuration, args.patch, args.batch, args.features)
    return synthetic_plans(args.patch or DEFAULT_PATCH[args.device], args.batch or DEFAULT_BATCH,
                           args.features if args.features is not None else DEFAULT_FEATURES[args.device])


def describe(plans: dict, device: torch.device) -> str:
    configuration = plans['configurations'][CONFIGURATION]
    patch = configuration['patch_size']
    patch_text = f'{patch[0]}^{len(patch)}' if len(set(patch)) == 1 else 'x'.join(map(str, patch))
    b = configuration['batch_size']
    return f'{device.type} {patch_text} B={b}+{b}'


def network_summary(plans: dict) -> str:
    architecture = plans['configurations'][CONFIGURATION]['architecture']
    kwargs = architecture['arch_kwargs']
    features = kwargs['features_per_stage']
    widths = 'nnU-Net\'s widths' if list(features) == nnunet_features(kwargs['n_stages']) else 'narrowed'
    return (f'{architecture["network_class_name"].rsplit(".", 1)[-1]}, {kwargs["n_stages"]} stages, features '
            f'{" ".join(map(str, features))} ({widths}), {torch.get_num_threads()} torch thread(s)')


def run(args) -> list:
    device = torch.device(args.device)
    plans = training_plans(args)
    labels = dataset_json(args.labels, len(plans['configurations'][CONFIGURATION]['normalization_schemes']))
    setting = describe(plans, device)
    patch_size = plans['configurations'][CONFIGURATION]['patch_size']
    print(f'# {setting}: {network_summary(plans)}', flush=True)
    results = []

    def report(result: dict) -> None:
        results.append(result)
        print(result['line'], flush=True)

    if 'sdf' in args.only:
        for result in run_sdf_benchmark(args.repeats):
            report({**result, 'benchmark': 'sdf'})
    with temporary_nnunet_folders():
        if 'loader' in args.only:
            loader_plans, loader_labels = preprocessed_loader_dataset(
                plans, [LOADER_VOLUME_PER_PATCH * p for p in patch_size], args.labels)
            workers = get_allowed_n_proc_DA() if args.workers is None else args.workers
            report(run_loader_benchmark(loader_plans, loader_labels, device, setting, workers, args.loader_batches,
                                        args.loader_rounds))
        if {'step', 'memory', 'inference'} & set(args.only):
            setup = step_setup(plans, labels, device)
            if 'step' in args.only:
                report(run_step_benchmark(setup, device, setting, args.repeats, args.warmup))
            if 'memory' in args.only:
                report(run_memory_benchmark(setup, device, setting))
            if 'inference' in args.only:
                image = args.inference_image or default_image_shape(patch_size, device)
                report(run_inference_benchmark(setup.dtc, device, setting, image, args.repeats, args.warmup))
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = args.threads if args.threads is not None else (DEFAULT_CPU_THREADS if args.device == 'cpu' else None)
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    results = run(args)
    print(f'# {time.perf_counter() - start:.0f} s', flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({'arguments': vars(args), 'results': results}, indent=1))
    return 0 if all(result['passed'] for result in results) else 1


if __name__ == '__main__':
    sys.exit(main())
