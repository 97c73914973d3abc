"""nnUNetv2_dtc_benchmark's steps in order: preprocessing (only what is missing), the CPU configuration, the unlabelled
preprocessing, then per seed and method training, test prediction and metrics, and for DTC trainers the dual-task
disagreement of the test cases (each reused when finished), and the report (benchmark.json, benchmark.md, PNGs) in
--out."""
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Dict, List, Optional

import torch
from batchgenerators.utilities.file_and_folder_operations import isdir, join, load_json
from nnunetv2.evaluation.evaluate_predictions import label_or_region_to_key
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw, nnUNet_results
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import get_identifiers_from_splitted_dataset_folder

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.comparison import summarize_postprocessing
from nnunetv2_dtc.benchmark.data import BenchmarkDataError, BenchmarkDataset, find_benchmark_dataset, \
    missing_preprocessing, preprocessing_command
from nnunetv2_dtc.benchmark.disagreement import disagreement_validation, has_auxiliary_task, rank_test_cases
from nnunetv2_dtc.benchmark.derived_data import plan_training_datasets, prepare_derived_dataset, \
    upper_bound_labels
from nnunetv2_dtc.benchmark.evaluation import POSTPROCESSINGS, evaluate
from nnunetv2_dtc.benchmark.metrics import NO_POSTPROCESSING
from nnunetv2_dtc.benchmark.model_info import model_info
from nnunetv2_dtc.benchmark.plans import add_cpu_configuration, cpu_configuration_name
from nnunetv2_dtc.benchmark.plots import CURVES_PNG, FIGURE_DESCRIPTIONS, HD95_PNG, PAIRED_DICE_PNG, hd95_figure, \
    paired_dice_figure, training_curves_figure
from nnunetv2_dtc.benchmark.overlays import overlay_gallery
from nnunetv2_dtc.benchmark.per_case_table import PER_CASE_CSV, per_case_csv
from nnunetv2_dtc.benchmark.prediction import predict, predict_unlabeled
from nnunetv2_dtc.benchmark.report import benchmark_markdown
from nnunetv2_dtc.benchmark.settings import METHODS, PSEUDO_LABELS, SOURCE_DATA, TRUE_LABELS, BenchmarkSettings
from nnunetv2_dtc.benchmark.training import BenchmarkRun, plan_runs, refuse_retraining_on_other_labels, train, \
    training_settings
from nnunetv2_dtc.trainer_dir import EXT_TRAINER_VARIABLE, environment_with_trainers
from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME
from nnunetv2_dtc.unlabeled_handling.verify import verify_unlabeled_folder
from nnunetv2_dtc.utilities.files import write_json_atomic, write_text_atomic

REPORT_JSON, REPORT_MD = 'benchmark.json', 'benchmark.md'
REPORT_FORMAT = 'nnunetv2_dtc benchmark, version 1'
STEPS_PER_RUN = 3  # train, predict, metrics
# before a derived run trains: predicting the pseudo-labels and making the dataset, or making the dataset
EXTRA_STEPS = {SOURCE_DATA: 0, PSEUDO_LABELS: 2, TRUE_LABELS: 1}
OVERLAY_DESCRIPTION = ('seed {seed}: the test cases where DTC gains most over nnU-Net (without both: the last method '
                       'over the first), the median one and where it loses most, reference and predictions as '
                       'contours')
UNLABELED_SUMMARY_LINE = 'unlabelled case(s) in'  # the line nnUNetv2_dtc_preprocess_unlabeled prints first


def default_out(dataset_name: str, configuration: str) -> str:
    return f'dtc_benchmark_{dataset_name}_{configuration}'


def run_benchmark(settings: BenchmarkSettings) -> dict:
    """Runs (or reuses) everything and writes the report; returns the content of benchmark.json."""
    settings.checked()
    dataset = find_benchmark_dataset(settings.dataset, settings.uses_unlabeled_images)
    out = os.path.abspath(settings.out or default_out(dataset.name, settings.configuration))
    trainers_folder = join(out, 'trainers')  # holds only generated trainer modules (nnUNet_extTrainer imports all)
    environment = environment_with_trainers({**os.environ, 'PYTHONUNBUFFERED': '1'}, trainers_folder)
    raw_unlabeled = _raw_unlabeled_cases(dataset)
    true_labels, true_labels_source = upper_bound_labels(dataset, raw_unlabeled) if settings.upper_bound else \
        (None, None)
    trained_configuration = cpu_configuration_name(settings.configuration, settings.features_divisor) \
        if settings.cpu_mode else settings.configuration
    training_datasets = plan_training_datasets(settings, dataset, trained_configuration)
    num_runs = len(settings.methods) * len(settings.seeds)
    num_derived_steps = sum(EXTRA_STEPS[METHODS[m].training_data] for m in settings.methods) * len(settings.seeds)
    num_ranking_steps = sum(has_auxiliary_task(m) for m in settings.methods) * len(settings.seeds)
    steps = BenchmarkSteps(1 + settings.cpu_mode + settings.uses_unlabeled_data + STEPS_PER_RUN * num_runs +
                           num_derived_steps + num_ranking_steps + 1, environment, join(out, 'logs'))
    print(f'nnUNetv2_dtc_benchmark: {dataset.name}, {len(dataset.labeled_cases)} labelled and '
          f'{len(dataset.test_cases)} test case(s); {num_runs} training(s); output in {out}', flush=True)

    _prepare_preprocessed_data(dataset, settings, steps)
    configuration, cpu_mode = settings.configuration, {'used': False}
    if settings.cpu_mode:
        cpu_mode = _add_cpu_configuration(dataset, settings, steps)
        configuration = cpu_mode['configuration']
    unlabeled_cases = _prepare_unlabeled_data(dataset, settings, configuration, steps) \
        if settings.uses_unlabeled_data else None

    runs = plan_runs(settings, training_datasets, configuration, trainers_folder)
    records, metrics = {}, {post: {} for post in POSTPROCESSINGS}
    derived_datasets, rankings = {}, {}
    for run in runs:
        method = METHODS[run.method]
        training_dataset, pseudo_labels = dataset, None
        if method.training_data == PSEUDO_LABELS:
            teacher = next(r for r in runs if r.method == method.teacher and r.seed == run.seed)
            pseudo_labels = predict_unlabeled(teacher, settings, dataset, raw_unlabeled, configuration,
                                              join(out, 'pseudo_labels'), steps)
            refuse_retraining_on_other_labels(run, pseudo_labels['source'])
            labels = {case: join(pseudo_labels['folder'], case + dataset.file_ending) for case in raw_unlabeled}
            training_dataset = prepare_derived_dataset(run.method, run.dataset_id, run.dataset_name, dataset,
                                                       raw_unlabeled, labels, pseudo_labels['source'], settings,
                                                       configuration, steps)
        elif method.training_data == TRUE_LABELS:
            training_dataset = prepare_derived_dataset(run.method, run.dataset_id, run.dataset_name, dataset,
                                                       raw_unlabeled, true_labels, true_labels_source, settings,
                                                       configuration, steps)
        derived_datasets[run.key] = training_dataset.name
        expected = training_settings(run, settings, training_dataset, configuration, unlabeled_cases,
                                     None if pseudo_labels is None else pseudo_labels['source'])
        records[run.key] = train(run, expected, settings, training_dataset, configuration, steps)
        records[run.key]['prediction'] = predict(run, settings, dataset, configuration, join(out, 'predictions'),
                                                 steps)
        for post, result in evaluate(run, records[run.key]['prediction'], dataset, join(out, 'metrics'),
                                     settings.num_processes, steps).items():
            metrics[post][run.key] = result
        if has_auxiliary_task(run.method):
            rankings[run.key] = rank_test_cases(run, settings, dataset, configuration, out, steps)

    steps.start(f'report: {join(out, REPORT_MD)}')
    infos = {run.key: model_info(run) for run in runs}
    overlays = [overlay_gallery(seed, [r for r in runs if r.seed == seed], metrics[NO_POSTPROCESSING],
                                {key: record['prediction']['folder'] for key, record in records.items()}, dataset,
                                out) for seed in settings.seeds]
    report = _report(settings, out, dataset, configuration, cpu_mode, unlabeled_cases, runs, records, metrics, infos,
                     steps, derived_datasets, overlays)
    report['disagreement_validation'] = disagreement_validation(runs, rankings, metrics[NO_POSTPROCESSING])
    paired_dice_figure(runs, metrics, join(out, PAIRED_DICE_PNG))
    hd95_figure(runs, metrics, join(out, HD95_PNG))
    training_curves_figure(runs, infos, join(out, CURVES_PNG))
    write_json_atomic(join(out, REPORT_JSON), report)
    write_text_atomic(join(out, REPORT_MD), benchmark_markdown(report))
    write_text_atomic(join(out, PER_CASE_CSV), per_case_csv(runs, metrics))
    steps.note(f'written: {REPORT_JSON}, {REPORT_MD}, {PER_CASE_CSV}, {PAIRED_DICE_PNG}, {HD95_PNG}, {CURVES_PNG}, '
               f'{", ".join(o["file"] for o in overlays)} in {out}')
    return report


def _prepare_preprocessed_data(dataset: BenchmarkDataset, settings: BenchmarkSettings, steps: BenchmarkSteps) -> None:
    steps.start(f'plans and preprocessed data ({settings.plans_identifier}, {settings.configuration})')
    missing = missing_preprocessing(dataset, settings.plans_identifier, settings.configuration)
    if missing is None:
        steps.note('reused: plans and preprocessed labelled cases are complete')
        steps.record_reused('plan_and_preprocess', None)
        return
    steps.note(f'needed: {missing}')
    steps.run('plan_and_preprocess', preprocessing_command(dataset, settings.plans_identifier, settings.configuration,
                                                           settings.num_processes))
    still_missing = missing_preprocessing(dataset, settings.plans_identifier, settings.configuration)
    if still_missing is not None:
        raise BenchmarkDataError(f'After nnU-Net\'s preprocessing, {still_missing}. Check -c {settings.configuration} '
                                 f'(nnU-Net plans 2d, 3d_fullres and, for large images, 3d_lowres) and the log in '
                                 f'{steps.log_folder}.')


def _add_cpu_configuration(dataset: BenchmarkDataset, settings: BenchmarkSettings, steps: BenchmarkSteps) -> dict:
    steps.start(f'CPU mode: reduced-width configuration of {settings.configuration} in the plans')
    plans_file = dataset.plans_file(settings.plans_identifier)
    name, written = add_cpu_configuration(plans_file, settings.configuration, settings.features_divisor)
    manager = PlansManager(plans_file)
    features = {c: manager.get_configuration(c).network_arch_init_kwargs['features_per_stage']
                for c in (settings.configuration, name)}
    steps.note(f'{"added" if written else "reused"} {name} in {plans_file}: features per stage {features[name]} '
               f'(parent {features[settings.configuration]})')
    return {'used': True, 'configuration': name, 'parent_configuration': settings.configuration,
            'features_per_stage': features[name], 'parent_features_per_stage': features[settings.configuration],
            'features_divisor': settings.features_divisor, 'plans_file': plans_file}


def _prepare_unlabeled_data(dataset: BenchmarkDataset, settings: BenchmarkSettings, configuration: str,
                            steps: BenchmarkSteps) -> List[str]:
    """The preprocessed unlabelled case ids for the trained configuration. Runs nnUNetv2_dtc_preprocess_unlabeled
    (which keeps finished cases) unless every raw unlabelled image is already preprocessed with these plans; a CPU
    configuration shares its parent's folder."""
    steps.start(f'unlabelled images for {configuration}')
    done = _preprocessed_unlabeled_cases(dataset, settings.plans_identifier, configuration)
    if done is not None and sorted(done) == sorted(_raw_unlabeled_cases(dataset)):
        steps.note(f'reused: all {len(done)} unlabelled images are preprocessed with these plans')
        steps.record_reused('preprocess_unlabeled', None)
        return done
    steps.run('preprocess_unlabeled', ['nnUNetv2_dtc_preprocess_unlabeled', '-d', str(dataset.dataset_id), '-c',
                                       configuration, '-p', settings.plans_identifier,
                                       '-np', str(settings.num_processes)],
              echo=lambda line: line if UNLABELED_SUMMARY_LINE in line else None)
    plans_manager = PlansManager(dataset.plans_file(settings.plans_identifier))
    return verify_unlabeled_folder(dataset.name, plans_manager, configuration)[1]


def _preprocessed_unlabeled_cases(dataset: BenchmarkDataset, plans_identifier: str,
                                  configuration: str) -> Optional[List[str]]:
    """The finished unlabelled cases matching these plans, or None when the trainer would refuse the folder."""
    try:
        return verify_unlabeled_folder(dataset.name, PlansManager(dataset.plans_file(plans_identifier)),
                                       configuration)[1]
    except UnlabeledDataError:
        return None


def _class_names(dataset_json: dict, keys: List[str]) -> Dict[str, str]:
    names = {label_or_region_to_key(tuple(v) if isinstance(v, list) else v): name
             for name, v in dataset_json['labels'].items()}
    return {key: names.get(key, key) for key in keys}


def _raw_unlabeled_cases(dataset: BenchmarkDataset) -> List[str]:
    folder = join(dataset.raw_folder, UNLABELED_IMAGES_FOLDER_NAME)
    return get_identifiers_from_splitted_dataset_folder(folder, dataset.file_ending).tolist() if isdir(folder) else []


def _versions() -> Dict[str, Optional[str]]:
    found = {'python': platform.python_version(), 'torch': torch.__version__}
    for package in ('nnunetv2', 'nnunetv2-dtc', 'monai', 'scipy'):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def _report(settings: BenchmarkSettings, out: str, dataset: BenchmarkDataset, configuration: str, cpu_mode: dict,
            unlabeled_cases: Optional[List[str]], runs: List[BenchmarkRun], records: Dict[str, dict],
            metrics: Dict[str, Dict[str, dict]], infos: Dict[str, dict], steps: BenchmarkSteps,
            derived_datasets: Dict[str, str], overlays: List[dict]) -> dict:
    first = metrics[POSTPROCESSINGS[0]][runs[0].key]
    return {
        'format': REPORT_FORMAT,
        'created': time.strftime('%Y-%m-%dT%H:%M:%S'),
        'settings': {**settings.as_json(), 'out': out},
        'trained_configuration': configuration,
        'cpu_mode': cpu_mode,
        'dataset': {'name': dataset.name, 'id': dataset.dataset_id, 'raw_folder': dataset.raw_folder,
                    'num_labeled': len(dataset.labeled_cases),
                    'num_unlabeled': len(unlabeled_cases if unlabeled_cases is not None else
                                         _raw_unlabeled_cases(dataset)),
                    'num_test': len(dataset.test_cases), 'labeled_cases': dataset.labeled_cases,
                    'unlabeled_cases': unlabeled_cases, 'test_cases': dataset.test_cases},
        'class_names': _class_names(load_json(join(runs[0].model_folder, 'dataset.json')),
                                    first['labels_or_regions']),
        'environment': {EXT_TRAINER_VARIABLE: steps.environment[EXT_TRAINER_VARIABLE],
                        'nnUNet_raw': nnUNet_raw.get(), 'nnUNet_preprocessed': nnUNet_preprocessed.get(),
                        'nnUNet_results': nnUNet_results.get(), 'versions': _versions()},
        'commands': steps.commands,
        'runs': [{'method': run.method, 'method_name': METHODS[run.method].name, 'seed': run.seed,
                  'trainer': run.trainer, 'key': run.key, 'training_dataset': derived_datasets[run.key],
                  'model_folder': run.model_folder, 'checkpoint': run.checkpoint,
                  'training': records[run.key]['training'], 'device': records[run.key]['device'],
                  'prediction_folder': records[run.key]['prediction']['folder'],
                  'epoch_seconds': infos[run.key]['epoch_seconds'],
                  'parameters': infos[run.key]['parameters'], 'curves': infos[run.key]['curves']}
                 for run in runs],
        'results': {post: {**summarize_postprocessing(runs, by_trainer, infos), 'per_case': by_trainer}
                    for post, by_trainer in metrics.items()},
        'overlays': overlays,
        'figures': {**FIGURE_DESCRIPTIONS, **{o['file']: OVERLAY_DESCRIPTION.format(seed=o['seed']) for o in overlays}},
    }
