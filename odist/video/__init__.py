"""Frame sources: archived video files, synthetic scenes with ground truth."""
