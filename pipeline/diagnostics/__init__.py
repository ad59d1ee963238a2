"""`pipeline diagnose`: what fine-tuning did to a run's input layers (drift, meaning, positions, length)."""
