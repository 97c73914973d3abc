"""benchmarks/speed.py runs end to end on tiny settings and reports every target with both figures. Timings are not
checked (they are no test on a shared CPU); the script breaking is."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SPEED_SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'speed.py'
TINY_SETTINGS = ['--patch', '16', '16', '16', '--features', '4', '8', '--repeats', '1', '--warmup', '0',
                 '--loader-batches', '2', '--loader-rounds', '2', '--workers', '0']
EXPECTED_LINES = ['sdf', 'sdf', 'loader', 'step', 'memory', 'inference']
TIMEOUT_S = 600

pytestmark = pytest.mark.slow  # subprocesses of nnU-Net's commands


def test_speed_script_reports_every_target(tmp_path):
    results_file = tmp_path / 'speed.json'
    completed = subprocess.run([sys.executable, str(SPEED_SCRIPT), *TINY_SETTINGS, '--json', str(results_file)],
                               capture_output=True, text=True, timeout=TIMEOUT_S, cwd=tmp_path)

    assert completed.returncode in (0, 1), completed.stderr[-3000:]  # 1: a target missed, which tiny settings may
    results = json.loads(results_file.read_text())['results']
    assert [r['benchmark'] for r in results] == EXPECTED_LINES
    for result in results:
        assert result['line'] in completed.stdout
        assert ' PASS' in result['line'] or ' FAIL' in result['line']
    sdf_results = results[:2]
    assert all(r['max_abs_diff'] <= 1e-6 and r['speedup'] > 0 for r in sdf_results)
    for result in results[2:]:
        assert math.isfinite(result['ratio']) and result['ratio'] > 0
        assert result['baseline'] > 0 and result['candidate'] > 0
    inference = results[-1]
    assert 'identical' in inference['line']
