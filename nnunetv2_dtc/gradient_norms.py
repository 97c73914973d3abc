"""How hard each DTC loss term pulls on the network: the L2 norm of each weighted term's gradient with respect to the
network's parameters, measured on one training step per epoch. It answers whether the consistency term (and its
unlabelled part) can move the network at all next to nnU-Net's supervised loss, before any weight is tuned."""
import math
from typing import Dict, Sequence

import torch

# measured term -> logger key; 'consistency_unlabeled' is the part of the consistency term the unlabelled patches
# contribute (the rest comes from the labelled ones)
GRADIENT_NORM_LOG_KEYS: Dict[str, str] = {
    'supervised': 'dtc_grad_norm_supervised',
    'sdf': 'dtc_grad_norm_sdf',
    'consistency': 'dtc_grad_norm_consistency',
    'consistency_unlabeled': 'dtc_grad_norm_consistency_unlabeled',
}


def gradient_norms(weighted_terms: Dict[str, torch.Tensor], parameters: Sequence[torch.nn.Parameter]) \
        -> Dict[str, float]:
    """{term: ||d term / d parameters||_2} for each weighted loss term, the graph kept for the training step's own
    backward pass. A term that does not depend on the parameters (e.g. a weight of 0) has norm 0."""
    norms = {}
    for name, term in weighted_terms.items():
        if not term.requires_grad:
            norms[name] = 0.0
            continue
        grads = torch.autograd.grad(term, parameters, retain_graph=True, allow_unused=True)
        squared = sum(float(torch.sum(g.float() ** 2)) for g in grads if g is not None)
        norms[name] = math.sqrt(squared)
    return norms
