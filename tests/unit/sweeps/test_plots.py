"""The sweep's plots read the right scores."""

from __future__ import annotations

from pipeline.sweeps import plots
from pipeline.sweeps.statistics import RunResult


def test_the_position_plot_of_a_sweep_takes_the_longest_length(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save_loss_by_position", lambda series, path, title: drawn.update(series, title=title))
    scores = {
        "validation": {
            "loss/positions 0-63": 3.0,
            "loss/positions 64-127": 2.9,
            "loss@512/positions 0-255": 3.1,
            "loss@512/positions 256-511": 3.2,
            "loss@1024/positions 0-511": 3.3,
            "loss@1024/positions 512-1023": 3.6,
        }
    }
    run = RunResult("cell", 0, tmp_path, scores, {}, "language-modeling")
    plots.position_curves({"cell": [run]}, "validation", tmp_path / "p.png")
    assert drawn["cell"] == [(0, 3.3), (512, 3.6)] and "in blocks of 1024 tokens" in drawn["title"]
