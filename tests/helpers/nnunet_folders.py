"""Temporary nnU-Net folders, and console scripts run in subprocesses with them."""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from nnunetv2_dtc.utilities.nnunet_paths import nnunet_folders_under

VENV_BIN = Path(sys.executable).parent
# keep subprocesses light on a small CPU machine: one data augmentation worker (0 would run augmentation in the
# trainer's process, but nnU-Net's planner passes it to torch.set_num_threads, which refuses 0), one thread per
# process, one worker in nnU-Net's export/evaluation pools (nnUNet_def_n_proc, default 8), no torch.compile.
# Override per call with run_console_script(..., environment={...}).
SUBPROCESS_SETTINGS = {'nnUNet_n_proc_DA': '1', 'OMP_NUM_THREADS': '1', 'nnUNet_compile': 'false',
                       'nnUNet_def_n_proc': '1'}
SUBPROCESS_TIMEOUT_S = 600


@dataclass(frozen=True)
class NnUNetFolders:
    raw: Path
    preprocessed: Path
    results: Path

    @classmethod
    def create(cls, root: Path) -> 'NnUNetFolders':
        folders = nnunet_folders_under(str(root))
        return cls(*(Path(folders[name]) for name in ('nnUNet_raw', 'nnUNet_preprocessed', 'nnUNet_results')))

    def variables(self) -> Dict[str, str]:
        return {'nnUNet_raw': str(self.raw), 'nnUNet_preprocessed': str(self.preprocessed),
                'nnUNet_results': str(self.results)}

    def set_in(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Sets the nnU-Net variables in this process (nnunetv2.paths reads them at each use)."""
        for name, value in self.variables().items():
            monkeypatch.setenv(name, value)

    def subprocess_environment(self, overrides: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        return {**os.environ, **self.variables(), **SUBPROCESS_SETTINGS,
                'PATH': os.pathsep.join([str(VENV_BIN), os.environ.get('PATH', '')]), **(overrides or {})}


def console_script_command(script: str, module: Optional[str] = None) -> List[str]:
    """The console script from the venv if it is installed, else `python -m module` (for a command that is not
    registered yet)."""
    installed = shutil.which(script, path=str(VENV_BIN))
    if installed is not None or module is None:
        return [installed or script]
    return [sys.executable, '-m', module]


def run_console_script(folders: NnUNetFolders, command: List[str], *args, check: bool = True,
                       timeout: float = SUBPROCESS_TIMEOUT_S,
                       environment: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Runs command + args with the folders' nnU-Net variables (and environment on top); with check, fails the
    test showing the output."""
    result = subprocess.run([*command, *map(str, args)], env=folders.subprocess_environment(environment),
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f'{" ".join([*command, *map(str, args)])} exited with {result.returncode}\n'
                    f'stdout:\n{result.stdout[-5000:]}\nstderr:\n{result.stderr[-5000:]}')
    return result
