"""Whole-file and whole-folder writes: each is written under a temporary name beside its target and renamed over it,
so an interrupt leaves either the old file (folder) or the new one, never a partial one. JSON is read back with a
missing file as None, and fingerprinted with sha256."""
import hashlib
import json
import math
import os
import shutil
import uuid
from contextlib import contextmanager
from typing import Iterator, Optional

import torch

PARTIAL_SUFFIX = '.partial'
COPY, HARD_LINK, SYMBOLIC_LINK = 'copy', 'hardlink', 'symlink'
FIGURE_DPI = 120  # 6 x 4.5 inch panels at 720 x 540 pixels: readable on screen and in a PDF draft
JSON_INDENT = 2


@contextmanager
def staged_folder(target: str) -> Iterator[str]:
    """Yields a new hidden folder beside `target` (hidden, so nnU-Net never takes it for a dataset or a model; a fresh
    name, so one left by a killed run is no obstacle) to write into. When the block ends, it replaces `target` (an
    existing one is removed first); when the block raises, it is removed and `target` is left as it was."""
    target = target.rstrip('/')
    staging = os.path.join(os.path.dirname(os.path.abspath(target)),
                           f'.{os.path.basename(target)}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}')
    os.makedirs(staging)
    try:
        yield staging
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def link_or_copy(source_file: str, destination: str, link: bool = True) -> str:
    """Hard-links source_file to destination (a symbolic link where that fails, e.g. across file systems, then a
    copy), or copies it without link; returns which it did."""
    if link:
        try:
            os.link(source_file, destination)
            return HARD_LINK
        except OSError:
            pass
        try:
            os.symlink(os.path.realpath(source_file), destination)
            return SYMBOLIC_LINK
        except OSError:
            pass
    shutil.copyfile(source_file, destination)
    return COPY


def write_text_atomic(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + PARTIAL_SUFFIX, 'w') as f:
        f.write(text)
    os.replace(path + PARTIAL_SUFFIX, path)
    return path


def write_json_atomic(path: str, content, indent: int = JSON_INDENT) -> str:
    """Strict JSON: NaN and infinities (which other parsers reject) are written as null."""
    return write_text_atomic(path, json.dumps(_finite_or_none(content), indent=indent, allow_nan=False) + '\n')


def _finite_or_none(content):
    if isinstance(content, float):
        return content if math.isfinite(content) else None
    if isinstance(content, dict):
        return {key: _finite_or_none(value) for key, value in content.items()}
    if isinstance(content, (list, tuple)):
        return [_finite_or_none(value) for value in content]
    return content


def read_json_or_none(path: str) -> Optional[dict]:
    """The JSON content, or None when the file does not exist (files written here are only ever replaced whole, so
    one that exists is complete)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def json_sha256(content) -> str:
    """sha256 of JSON content, independent of dict order and whitespace."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(',', ':')).encode()).hexdigest()


def torch_save_atomic(content, path: str) -> str:
    """torch.save through a temporary name, so that a stopped run never leaves a truncated file under `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(content, path + PARTIAL_SUFFIX)
    os.replace(path + PARTIAL_SUFFIX, path)
    return path


def save_figure_atomic(figure, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + PARTIAL_SUFFIX, 'wb') as f:
        figure.savefig(f, format='png', dpi=FIGURE_DPI)
    os.replace(path + PARTIAL_SUFFIX, path)
    return path
