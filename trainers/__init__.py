"""nnU-Net trainer classes of nnunetv2-dtc. Point nnUNet_extTrainer at this folder (`nnUNetv2_dtc_trainer_dir`):
nnU-Net imports every module here, so it holds trainer modules only."""
