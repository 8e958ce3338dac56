"""The fleet layer: many video streams fanned out over Ray."""
