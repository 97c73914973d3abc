"""nnU-Net's (and our) console scripts run in subprocesses, each with its output appended to a log file, as the demo
and the benchmark run them."""
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

TAIL_LINES_SHOWN = 30
LOG_TIME_FORMAT = '%Y-%m-%d %H:%M:%S'


def console_script_path(command: str) -> str:
    """The console script installed beside this Python (works in a venv that is not activated)."""
    candidate = os.path.join(os.path.dirname(sys.executable), command)
    return candidate if os.path.isfile(candidate) else command


@dataclass(frozen=True)
class FinishedCommand:
    return_code: int
    started: float  # time.time() at the start
    seconds: float


def run_logged(command: List[str], environment: Dict[str, str], log_file: str,
               echo: Optional[Callable[[str], None]] = None) -> FinishedCommand:
    """Runs command (its first element a console script name) with its output appended to log_file, after a line
    naming the command and the time (so a resumed step keeps the history). echo sees every output line."""
    os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
    started = time.time()
    with open(log_file, 'a') as log:
        log.write(f'=== {time.strftime(LOG_TIME_FORMAT)} {shlex.join(command)}\n')
        log.flush()
        process = subprocess.Popen([console_script_path(command[0]), *command[1:]], env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        try:
            for line in process.stdout:
                log.write(line)
                if echo is not None:
                    echo(line.rstrip('\n'))
            return_code = process.wait()
        except BaseException:
            process.terminate()
            process.wait()
            raise
    return FinishedCommand(return_code, started, round(time.time() - started, 1))


def log_tail(log_file: str, num_lines: int = TAIL_LINES_SHOWN) -> str:
    with open(log_file) as log:
        return ''.join(log.readlines()[-num_lines:])
