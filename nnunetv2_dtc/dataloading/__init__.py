"""DTC's training batches: nnU-Net's labelled patches with their SDF targets, then unlabelled patches (batch.py holds
the contract between the loaders and the loss)."""
