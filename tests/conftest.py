"""Shared fixtures; the helpers they build on are in helpers/."""
from pathlib import Path

import pytest

from helpers.nnunet_folders import NnUNetFolders
from helpers.ssl_source import make_source


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NnUNetFolders:
    """Empty nnUNet_raw/nnUNet_preprocessed/nnUNet_results folders, set in the environment for this test."""
    folders = NnUNetFolders.create(tmp_path / 'nnunet')
    folders.set_in(monkeypatch)
    return folders


@pytest.fixture
def source(nnunet_env: NnUNetFolders) -> Path:
    """A fully labelled source dataset for nnUNetv2_dtc_make_ssl_dataset in this test's nnUNet_raw."""
    return make_source(nnunet_env.raw)
