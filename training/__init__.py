"""Training (torch): data, augmentation, models, the training loop and its two trainers."""
