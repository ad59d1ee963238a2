"""Training: building an experiment from a recipe, layer policies, the loop, checkpoints and the run folder."""
