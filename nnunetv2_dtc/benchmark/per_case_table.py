"""per_case.csv: each test case's metrics per run, post-processing and class (the foreground mean included), in one
small file to keep beside a report. Runs trained in different sessions or on different machines score the same
test cases, so with this file they can still be paired case by case later (compare_reports.py); benchmark.json
holds the same values among everything else, at a few times the size."""
import csv
import io
from typing import Dict, Sequence

from nnunetv2_dtc.benchmark.comparison import TABLE_METRICS, with_foreground
from nnunetv2_dtc.benchmark.training import BenchmarkRun

PER_CASE_CSV = 'per_case.csv'
CSV_COLUMNS = ('method', 'seed', 'trainer', 'postprocessing', 'case_id', 'class') + TABLE_METRICS


def per_case_csv(runs: Sequence[BenchmarkRun], metrics: Dict[str, Dict[str, dict]]) -> str:
    """The CSV text for `metrics` ({postprocessing: {run key: folder_metrics result}}); an undefined value (a
    distance to an empty mask) is an empty cell. Values are written exactly (Python's shortest round-trip repr): a
    rounded value would turn float32 noise in the distances (1e-6 mm) into ties and tie some absolute differences,
    which moves the Wilcoxon p (scipy's exact test falls back to the normal approximation with ties), so pairing from
    this file would not give the report's numbers."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for postprocessing, results in metrics.items():
        for run in runs:
            result = with_foreground(results[run.key])
            for case in result['metric_per_case']:
                for key in result['labels_or_regions']:
                    values = case['metrics'][key]
                    writer.writerow([run.method, run.seed, run.trainer, postprocessing, case['case_id'], key] +
                                    ['' if values[m] is None else repr(float(values[m])) for m in TABLE_METRICS])
    return text.getvalue()
