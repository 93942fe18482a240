"""Slices, meta labels, sampling and augmentation for pre-training and fine-tuning."""
