"""Whole-file writes for the benchmark's outputs: each file is written under a temporary name beside its target and
renamed over it, so an interrupt leaves either the old file or the new one, never a partial one."""
import json
import math
import os
from typing import Optional

PARTIAL_SUFFIX = '.partial'
FIGURE_DPI = 120  # 6 x 4.5 inch panels at 720 x 540 pixels: readable on screen and in a PDF draft


def write_text_atomic(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + PARTIAL_SUFFIX, 'w') as f:
        f.write(text)
    os.replace(path + PARTIAL_SUFFIX, path)
    return path


def write_json_atomic(path: str, content) -> str:
    """Strict JSON: NaN and infinities (which other parsers reject) are written as null."""
    return write_text_atomic(path, json.dumps(_finite_or_none(content), indent=2, allow_nan=False) + '\n')


def _finite_or_none(content):
    if isinstance(content, float):
        return content if math.isfinite(content) else None
    if isinstance(content, dict):
        return {key: _finite_or_none(value) for key, value in content.items()}
    if isinstance(content, (list, tuple)):
        return [_finite_or_none(value) for value in content]
    return content


def read_json_or_none(path: str) -> Optional[dict]:
    """The JSON content, or None when the file does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save_figure_atomic(figure, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + PARTIAL_SUFFIX, 'wb') as f:
        figure.savefig(f, format='png', dpi=FIGURE_DPI)
    os.replace(path + PARTIAL_SUFFIX, path)
    return path
