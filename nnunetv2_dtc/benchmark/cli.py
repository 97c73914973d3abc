"""nnUNetv2_dtc_benchmark: vanilla nnU-Net, nnUNetTrainerDTC, the labelled-only ablation, nnU-Net's pseudo-label recipe
and optionally the upper bound, trained alike and scored on held-out test cases; see docs/benchmark.md."""
import argparse
import sys

import torch
from nnunetv2.configuration import default_num_processes

from nnunetv2_dtc.benchmark.commands import BenchmarkCommandError
from nnunetv2_dtc.benchmark.data import BenchmarkDataError
from nnunetv2_dtc.benchmark.metrics import MetricsInputError
from nnunetv2_dtc.benchmark.pipeline import run_benchmark
from nnunetv2_dtc.benchmark.plans import DEFAULT_FEATURES_DIVISOR, MIN_FEATURES_PER_STAGE, BenchmarkPlansError
from nnunetv2_dtc.benchmark.settings import DEFAULT_EPOCHS, DEFAULT_ITERATIONS_PER_EPOCH, DEFAULT_SEEDS, \
    DEFAULT_TRAINERS, DEFAULT_VAL_ITERATIONS_PER_EPOCH, SELECTABLE_METHODS, BenchmarkSettings, BenchmarkSettingsError
from nnunetv2_dtc.benchmark.statistics import PairedStatisticsError
from nnunetv2_dtc.benchmark.training import BenchmarkRunConflict
from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.utilities.cli import EXIT_STATUS_FAILED, EXIT_STATUS_INTERRUPTED, exit_with_error
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER

COMMAND = 'nnUNetv2_dtc_benchmark'
DEFAULT_DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description='Trains vanilla nnU-Net (labelled cases only), nnUNetTrainerDTC (labelled + unlabelled), '
                    'nnUNetTrainerDTC_LabeledOnly (ablation) and nnU-Net\'s pseudo-label recipe with the same plans, '
                    'data and schedule on fold all, '
                    'predicts the held-out test cases (imagesTs) with each final checkpoint and compares them on '
                    'labelsTs: benchmark.json, benchmark.md, per_case.csv and plots in --out. Rerun the same command '
                    'to resume: finished trainings, predictions and metrics are reused.')
    parser.add_argument('-d', required=True, metavar='ID', help='Dataset ID or name; its raw folder needs imagesTr/'
                                                                'labelsTr, imagesUnlabeled and imagesTs/labelsTs.')
    parser.add_argument('-c', required=True, metavar='CONFIG', help='nnU-Net configuration, e.g. 3d_fullres or 2d.')
    parser.add_argument('-p', default=DEFAULT_PLANS_IDENTIFIER, metavar='PLANS',
                        help=f'Plans identifier. Default: {DEFAULT_PLANS_IDENTIFIER} (planned and preprocessed when '
                             f'missing).')
    parser.add_argument('--trainers', nargs='+', default=list(DEFAULT_TRAINERS), choices=list(SELECTABLE_METHODS),
                        metavar='METHOD',
                        help=f'Methods to compare: {", ".join(SELECTABLE_METHODS)}. pseudo_label: nnU-Net\'s own model '
                             f'predicts the unlabelled images and nnU-Net trains again on all (needs nnUNetTrainer); '
                             f'dtc_pseudo_label: the same with DTC\'s predictions (needs nnUNetTrainerDTC). '
                             f'nnUNetTrainerDTC_<variant>: issue #14\'s variants (README); a DTC method\'s gain over '
                             f'its labelled-only ablation, when both run, is the report\'s headline. Default: '
                             f'{" ".join(DEFAULT_TRAINERS)}.')
    parser.add_argument('--upper_bound', action='store_true',
                        help='Also train nnU-Net on the labelled plus the unlabelled cases with their true labels (a '
                             'dataset made by nnUNetv2_dtc_make_ssl_dataset whose source is still there), and report '
                             'the share of the gap to it each method closes.')
    parser.add_argument('--derived_dataset_id', type=int, default=None, metavar='ID',
                        help='First dataset ID for the datasets the benchmark derives (pseudo-labels, upper bound), '
                             'which take it and the next ones; they must be free. Default: the first free IDs after '
                             'the dataset\'s. A rerun finds them by name.')
    parser.add_argument('--epochs', type=int, default=DEFAULT_EPOCHS, help=f'Default: {DEFAULT_EPOCHS} (nnU-Net\'s).')
    parser.add_argument('--iterations_per_epoch', type=int, default=DEFAULT_ITERATIONS_PER_EPOCH,
                        help=f'Default: {DEFAULT_ITERATIONS_PER_EPOCH} (nnU-Net\'s).')
    parser.add_argument('--val_iterations', type=int, default=DEFAULT_VAL_ITERATIONS_PER_EPOCH,
                        help=f'Validation iterations per epoch. Default: {DEFAULT_VAL_ITERATIONS_PER_EPOCH} '
                             f'(nnU-Net\'s).')
    parser.add_argument('--seeds', nargs='+', type=int, default=list(DEFAULT_SEEDS), metavar='SEED',
                        help='One training per method and seed. Default: 0.')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default=DEFAULT_DEVICE,
                        help='Default: cuda when available, else cpu.')
    parser.add_argument('--cpu_mode', action='store_true',
                        help='Train a reduced-width configuration <CONFIG>_dtcbench_cpu_div<K> (added to the plans, '
                             'inheriting CONFIG and its preprocessed data; only features_per_stage divided by K).')
    parser.add_argument('--features_divisor', type=int, default=DEFAULT_FEATURES_DIVISOR, metavar='K',
                        help=f'--cpu_mode width divisor (at least {MIN_FEATURES_PER_STAGE} features per stage). '
                             f'Default: {DEFAULT_FEATURES_DIVISOR}.')
    parser.add_argument('-np', type=int, default=default_num_processes, metavar='N',
                        help=f'Processes for preprocessing, prediction and metrics. Default: {default_num_processes} '
                             f'(nnU-Net\'s, env nnUNet_def_n_proc). Data augmentation workers: env nnUNet_n_proc_DA.')
    parser.add_argument('--out', default=None, metavar='DIR',
                        help='Output folder. Default: ./dtc_benchmark_<dataset name>_<CONFIG>.')
    return parser


def benchmark_entry() -> None:
    args = _parser().parse_args()
    settings = BenchmarkSettings(
        dataset=args.d, configuration=args.c, plans_identifier=args.p, trainers=tuple(args.trainers),
        epochs=args.epochs, iterations_per_epoch=args.iterations_per_epoch,
        val_iterations_per_epoch=args.val_iterations, seeds=tuple(args.seeds), device=args.device,
        cpu_mode=args.cpu_mode, features_divisor=args.features_divisor, num_processes=args.np, out=args.out or '',
        upper_bound=args.upper_bound, derived_dataset_id=args.derived_dataset_id)
    try:
        run_benchmark(settings)
    except (BenchmarkSettingsError, BenchmarkDataError, BenchmarkPlansError, UnlabeledDataError) as e:
        exit_with_error(COMMAND, e)
    except (BenchmarkCommandError, BenchmarkRunConflict, MetricsInputError, PairedStatisticsError) as e:
        exit_with_error(COMMAND, e, EXIT_STATUS_FAILED)
    except KeyboardInterrupt:
        print(f'\n{COMMAND}: interrupted. Run the same command again to resume: finished trainings, predictions and '
              f'metrics are kept, an unfinished training continues from its last checkpoint.', file=sys.stderr)
        sys.exit(EXIT_STATUS_INTERRUPTED)
