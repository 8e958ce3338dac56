"""odist: online model distillation for video, at fleet scale."""

__version__ = "0.1.0"
