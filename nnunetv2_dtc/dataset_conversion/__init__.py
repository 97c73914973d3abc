"""Datasets in nnU-Net's raw layout: a semi-supervised benchmark split of a fully labelled dataset, and the synthetic
dataset of the demo and the tests."""
