"""The benchmark's steps: numbered progress lines, and nnU-Net's commands run in subprocesses with their output in
log files (appended, so a resumed step keeps the history), each recorded for benchmark.json."""
import os
import re
import shlex
import time
from typing import Callable, Dict, List, Optional

from nnunetv2_dtc.utilities.console_scripts import log_tail, run_logged

PROGRESS_PREFIX = '[nnUNetv2_dtc_benchmark'


class BenchmarkCommandError(RuntimeError):
    """A command failed; the message names it, its log and the log's last lines."""


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

        def show(line: str) -> None:
            shown = echo(line) if echo is not None else None
            if shown:
                self.note(shown)

        finished = run_logged(command, self.environment, log_file, show)
        record = {'step': step, 'command': command, 'shell': shlex.join(command), 'log': log_file,
                  'started': time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(finished.started)),
                  'seconds': finished.seconds, 'reused': False}
        if finished.return_code != 0:
            raise BenchmarkCommandError(f'{step} failed (exit {finished.return_code}): {shlex.join(command)}\nLast '
                                        f'lines of {log_file}:\n{log_tail(log_file)}')
        self.commands.append(record)
        self.note(f'done in {record["seconds"]:.0f} s')
        return record
