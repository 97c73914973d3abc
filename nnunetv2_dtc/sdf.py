"""Normalised signed distance function (SDF), the level-set target of DTC.

Follows ``compute_sdf`` in DTC's ``train_la_dtc.py`` (Luo et al., AAAI 2021): per class,
``negdis / max(negdis) - posdis / max(posdis)`` with the inner boundary set to 0, so values are
in [-1, 1], negative inside, positive outside. Distances are in voxel units and the image border
is not background, as in DTC (scipy's ``distance_transform_edt`` and skimage's
``find_boundaries`` defaults).

``zero_inner_boundary=False`` leaves out DTC's last step: the inner boundary keeps its
``-1 / max(posdis)``, so the zero level lies between the inner boundary and the first voxel outside,
and ``sigmoid(-k * sdf)`` (DTC's level-set view) reproduces the label map instead of giving 0.5 on the
inner boundary (nnUNetTrainerDTC_NegativeBoundarySDF, issue #14).
"""

from numbers import Integral
from typing import Sequence, Union

import edt
import numpy as np

# One thread: SDF targets are computed inside nnU-Net's data-loader worker processes, which
# already use every core; threads on top would oversubscribe them.
DEFAULT_PARALLEL = 1

# Two labels for edt's multi-label transform: outside the class and inside it.
_OUTSIDE_LABEL = 1

Label = Union[int, Sequence[int]]


def compute_sdf(segmentation: np.ndarray, labels: Union[Label, Sequence[Label]],
                parallel: int = DEFAULT_PARALLEL, zero_inner_boundary: bool = True) -> np.ndarray:
    """Return a float32 array (len(labels), *segmentation.shape), one normalised SDF per entry.

    An entry of ``labels`` is a class (int) or a region (sequence of ints, their union); a bare
    int means ``[that int]``. An empty class gives zeros. A class that fills the whole image gives
    -1 everywhere (deepest inside), where DTC's reference divides 0 by 0 and gives NaN.
    """
    if segmentation.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D segmentation, got shape {segmentation.shape}")
    if isinstance(labels, Integral):
        labels = [labels]
    segmentation = np.ascontiguousarray(segmentation)
    out = np.empty((len(labels), *segmentation.shape), dtype=np.float32)
    for channel, entry in zip(out, labels):
        _fill_channel(channel, _class_mask(segmentation, entry), parallel, zero_inner_boundary)
    return out


def _class_mask(segmentation: np.ndarray, entry: Label) -> np.ndarray:
    if isinstance(entry, Integral):
        return segmentation == entry
    return np.isin(segmentation, entry)


def _fill_channel(out: np.ndarray, inside: np.ndarray, parallel: int, zero_inner_boundary: bool) -> None:
    """Write the normalised SDF of the boolean mask ``inside`` into ``out``.

    One two-label edt call gives both sides at once: every voxel gets its distance to the nearest
    voxel of the other label, i.e. posdis inside and negdis outside. It is exact and measured 20 %
    faster than two binary calls (112x112x80, one blob: 40 ms against 18 + 31 ms).
    """
    if not inside.any():
        out.fill(0.0)
        return
    if inside.all():
        out.fill(-1.0)
        return
    two_labels = np.add(inside, _OUTSIDE_LABEL, dtype=np.uint8)
    signed = edt.edt(two_labels, black_border=False, parallel=parallel)
    np.negative(signed, out=signed, where=inside)
    # Both sides are non-empty here, so both maxima are at least 1 (a face neighbour away): values
    # are >= 1 outside and <= -1 inside, and plain min / max give each side's maximum distance.
    inside_max, outside_max = -signed.min(), signed.max()
    np.divide(signed, outside_max, out=out)
    np.divide(signed, inside_max, out=out, where=inside)
    if zero_inner_boundary:
        # The only lattice points at distance exactly 1 are face neighbours, so inside voxels at
        # distance 1 are skimage's inner boundary (connectivity 1).
        out[signed == -1.0] = 0.0
