"""Where results go: per-frame records, masks, checkpoints and summaries."""
