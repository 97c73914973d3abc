"""DTC's reference SDF formulation, the baseline for tests and speed benchmarks.

Same steps as ``compute_sdf`` in DTC's ``train_la_dtc.py``, one class at a time: scipy's
``distance_transform_edt`` inside and outside, skimage's ``find_boundaries(mode='inner')``, in
float64. Only departure: a class filling the whole image gives -1 (DTC gives NaN, 0 / 0), to match
``nnunetv2_dtc.sdf.compute_sdf``. ``zero_inner_boundary=False`` skips DTC's ``sdf[boundary == 1] = 0``.
"""

from numbers import Integral

import numpy as np
from scipy.ndimage import distance_transform_edt
from skimage.segmentation import find_boundaries


def reference_sdf(segmentation: np.ndarray, labels, zero_inner_boundary: bool = True) -> np.ndarray:
    if isinstance(labels, Integral):
        labels = [labels]
    out = np.zeros((len(labels), *segmentation.shape))
    for channel, entry in zip(out, labels):
        if isinstance(entry, Integral):
            posmask = segmentation == entry
        else:
            posmask = np.isin(segmentation, list(entry))
        if posmask.all():
            channel[:] = -1.0
        elif posmask.any():
            negmask = ~posmask
            posdis = distance_transform_edt(posmask)
            negdis = distance_transform_edt(negmask)
            boundary = find_boundaries(posmask, mode="inner").astype(np.uint8)
            sdf = ((negdis - np.min(negdis)) / (np.max(negdis) - np.min(negdis))
                   - (posdis - np.min(posdis)) / (np.max(posdis) - np.min(posdis)))
            if zero_inner_boundary:
                sdf[boundary == 1] = 0
            channel[:] = sdf
    return out.astype(np.float32)
