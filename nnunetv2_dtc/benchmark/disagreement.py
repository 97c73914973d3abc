"""Does the dual-task disagreement tell which case a DTC model gets wrong? For each run of a DTC trainer (DTC, its
variants and ablations), nnUNetv2_dtc_rank_unlabeled scores the held-out test cases, and the report gives the
Spearman correlation between each case's score and its Dice error (1 - foreground Dice), with its p-value: a
validation of the ranking on cases whose truth is known."""
import csv
import os
from typing import Dict, List, Optional, Sequence

from batchgenerators.utilities.file_and_folder_operations import isfile, join
from scipy.stats import spearmanr

from nnunetv2_dtc.annotation.rank_unlabeled import CSV_NAME
from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.comparison import FOREGROUND, with_foreground
from nnunetv2_dtc.benchmark.data import BenchmarkDataset
from nnunetv2_dtc.benchmark.settings import FOLD, BenchmarkSettings, trainer_class
from nnunetv2_dtc.benchmark.training import BenchmarkRun

RANKINGS_FOLDER = 'rankings'
MIN_CASES_FOR_SPEARMAN = 3


def has_auxiliary_task(method: str) -> bool:
    return hasattr(trainer_class(method), 'build_auxiliary_task')


def rank_test_cases(run: BenchmarkRun, settings: BenchmarkSettings, dataset: BenchmarkDataset, configuration: str,
                    out: str, steps: BenchmarkSteps) -> str:
    """The run's annotation_priority.csv of the test cases, made or reused (while newer than its checkpoint)."""
    steps.start(f'dual-task disagreement of the {len(dataset.test_cases)} test case(s) with {run.label}')
    folder = join(out, RANKINGS_FOLDER, run.key)
    csv_file = join(folder, CSV_NAME)
    if isfile(csv_file) and os.stat(csv_file).st_mtime_ns > os.stat(run.checkpoint).st_mtime_ns:
        steps.note(f'reused: {csv_file}')
        steps.record_reused(f'rank {run.key}', None)
        return csv_file
    steps.run(f'rank {run.key}', ['nnUNetv2_dtc_rank_unlabeled', '-d', str(dataset.dataset_id), '-c', configuration,
                                  '-f', FOLD, '-tr', run.trainer, '-p', settings.plans_identifier,
                                  '-i', dataset.test_images, '-o', folder, '-device', settings.device,
                                  '-np', str(settings.num_processes), '--overwrite'])
    return csv_file


def read_scores(csv_file: str) -> Dict[str, float]:
    with open(csv_file) as f:
        return {row['case']: float(row['score']) for row in csv.DictReader(f)}


def disagreement_validation(runs: Sequence[BenchmarkRun], rankings: Dict[str, str],
                            results: Dict[str, dict]) -> List[dict]:
    """Per ranked run: {'key', 'method', 'seed', 'n_cases', 'spearman_rho', 'p_value'} between the disagreement
    score and 1 - foreground Dice over the test cases with a defined Dice (rho None below MIN_CASES_FOR_SPEARMAN)."""
    rows = []
    for run in runs:
        if run.key not in rankings:
            continue
        scores = read_scores(rankings[run.key])
        dice = {case['case_id']: case['metrics'][FOREGROUND]['Dice']
                for case in with_foreground(results[run.key])['metric_per_case']}
        cases = [case for case in scores if dice.get(case) is not None]
        rho: Optional[float] = None
        p_value: Optional[float] = None
        if len(cases) >= MIN_CASES_FOR_SPEARMAN:
            statistic = spearmanr([scores[c] for c in cases], [1 - dice[c] for c in cases])
            if statistic.statistic == statistic.statistic:  # NaN when a side is constant
                rho, p_value = float(statistic.statistic), float(statistic.pvalue)
        rows.append({'key': run.key, 'method': run.method, 'seed': run.seed, 'n_cases': len(cases),
                     'spearman_rho': rho, 'p_value': p_value})
    return rows
