"""Evaluation: the prediction loop every task adapter uses (`loop`), the metric modules (`metrics`), scores as
per-example counts (`counts`) and the pictures of a run's results (`plots`). Scoring a run with its task is the
training package's (`pipeline.training.scoring`)."""
