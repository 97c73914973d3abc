"""Dual-Task Consistency (DTC) semi-supervised training for nnU-Net v2."""

from nnunetv2_dtc.sdf import compute_sdf

__all__ = ["compute_sdf"]
