"""Unlabelled images for DTC: folder conventions, preprocessing with the dataset's own nnU-Net plans, and the
check the trainer runs before it uses the preprocessed unlabelled cases."""
