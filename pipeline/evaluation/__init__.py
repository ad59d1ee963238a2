"""Evaluation: the prediction loop every task uses, the metric modules, scoring a run and re-scoring a saved one."""
