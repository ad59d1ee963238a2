"""Sweeps over policies × seeds (`sweep`), with statistics, plots and a classical baseline; `compare` for any runs."""
