"""Per-case, per-class metrics of a run's test predictions (metrics.folder_metrics), once as predicted
and once with largest-connected-component post-processing, each kept in its own file and never mixed. Reused while
the predictions they were computed from are the same."""
from typing import Dict

from batchgenerators.utilities.file_and_folder_operations import join

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.data import BenchmarkDataset
from nnunetv2_dtc.benchmark.metrics import LARGEST_COMPONENT, NO_POSTPROCESSING, folder_metrics
from nnunetv2_dtc.benchmark.training import BenchmarkRun
from nnunetv2_dtc.utilities.files import read_json_or_none, write_json_atomic

POSTPROCESSINGS = (NO_POSTPROCESSING, LARGEST_COMPONENT)


def evaluate(run: BenchmarkRun, prediction: dict, dataset: BenchmarkDataset, metrics_root: str,
             num_processes: int, steps: BenchmarkSteps) -> Dict[str, dict]:
    """{postprocessing: folder_metrics result} for both post-processings, computed or reused."""
    steps.start(f'metrics of {run.label} (as predicted, and largest connected component)')
    results = {}
    for postprocessing in POSTPROCESSINGS:
        file = join(metrics_root, f'{run.key}__{postprocessing}.json')
        stored = read_json_or_none(file)
        if stored is not None and stored['source'] == prediction['source']:
            steps.note(f'reused: {file}')
            results[postprocessing] = stored['metrics']
            continue
        metrics = folder_metrics(prediction['folder'], dataset.test_labels, join(run.model_folder, 'dataset.json'),
                                 postprocess_largest_component=postprocessing == LARGEST_COMPONENT,
                                 num_processes=num_processes)
        write_json_atomic(file, {'source': prediction['source'], 'metrics': metrics})
        steps.note(f'{postprocessing}: mean foreground Dice {metrics["foreground_mean"]["Dice"]:.4f} ({file})')
        results[postprocessing] = metrics
    return results
