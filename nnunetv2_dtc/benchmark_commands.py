"""The benchmark's steps: numbered progress lines, and nnU-Net's commands run in subprocesses with their output in
log files (appended, so a resumed step keeps the history), each recorded for benchmark.json."""
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

TAIL_LINES_SHOWN = 30
PROGRESS_PREFIX = '[nnUNetv2_dtc_benchmark'


class BenchmarkCommandError(RuntimeError):
    """A command failed; the message names it, its log and the log's last lines."""


def console_script_path(command: str) -> str:
    """The console script installed beside this Python (works in a venv that is not activated)."""
    candidate = os.path.join(os.path.dirname(sys.executable), command)
    return candidate if os.path.isfile(candidate) else command


class BenchmarkSteps:
    """Prints '[nnUNetv2_dtc_benchmark i/N] ...' per step and runs the steps' commands."""

    def __init__(self, total_steps: int, environment: Dict[str, str], log_folder: str):
        self.total_steps = total_steps
        self.done_steps = 0
        self.environment = environment
        self.log_folder = log_folder
        self.commands: List[dict] = []
        os.makedirs(log_folder, exist_ok=True)

    def start(self, description: str) -> None:
        self.done_steps += 1
        print(f'{PROGRESS_PREFIX} {self.done_steps}/{self.total_steps}] {description}', flush=True)

    @staticmethod
    def note(text: str) -> None:
        print(f'    {text}', flush=True)

    def record_reused(self, step: str, recorded_command: Optional[dict]) -> None:
        """Lists a step whose output was reused, with the command that made it (when known)."""
        self.commands.append({**(recorded_command or {'step': step, 'command': None}), 'reused': True})

    def run(self, step: str, command: List[str], echo: Optional[Callable[[str], Optional[str]]] = None) -> dict:
        """Runs command (its first element a console script name), appending its output to logs/<step>.log. echo
        maps an output line to a progress note (or None). Returns the command's record; raises
        BenchmarkCommandError when it fails."""
        log_file = os.path.join(self.log_folder, re.sub(r'[^A-Za-z0-9_.-]+', '_', step) + '.log')
        self.note(f'$ {shlex.join(command)}')
        self.note(f'log: {log_file}')
        started = time.time()
        with open(log_file, 'a') as log:
            log.write(f'=== {time.strftime("%Y-%m-%d %H:%M:%S")} {shlex.join(command)}\n')
            log.flush()
            process = subprocess.Popen([console_script_path(command[0]), *command[1:]], env=self.environment,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            try:
                for line in process.stdout:
                    log.write(line)
                    shown = echo(line.rstrip('\n')) if echo is not None else None
                    if shown:
                        self.note(shown)
                return_code = process.wait()
            except BaseException:
                process.terminate()
                process.wait()
                raise
        record = {'step': step, 'command': command, 'shell': shlex.join(command), 'log': log_file,
                  'started': time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(started)),
                  'seconds': round(time.time() - started, 1), 'reused': False}
        if return_code != 0:
            with open(log_file) as log:
                tail = ''.join(log.readlines()[-TAIL_LINES_SHOWN:])
            raise BenchmarkCommandError(f'{step} failed (exit {return_code}): {shlex.join(command)}\nLast lines of '
                                        f'{log_file}:\n{tail}')
        self.commands.append(record)
        self.note(f'done in {record["seconds"]:.0f} s')
        return record
