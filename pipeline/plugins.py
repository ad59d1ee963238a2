"""Plugins: modules that register model families or task types from outside the package (`register_family`,
`register_task`). `EMBEDLAB_PLUGINS` names them, as importable modules separated by commas; the command line
imports them before it reads a recipe, so that every process of a run sees the same registrations: the runs a
sweep starts, Ray trials and `accelerate launch` workers inherit the variable.
"""

from __future__ import annotations

import importlib
import os

from pipeline.errors import PipelineError, unusable

VARIABLE = "EMBEDLAB_PLUGINS"


def load_plugins() -> list[str]:
    """Import every module `EMBEDLAB_PLUGINS` names; returns their names (a module that fails is one line)."""
    names = [name.strip() for name in os.environ.get(VARIABLE, "").split(",") if name.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except SystemExit as stop:  # sys.exit() while imported: the command must not end "successfully" unseen
            raise PipelineError(
                f"plugin '{name}' called sys.exit({stop.code!r}) while being imported", field=VARIABLE
            ) from None
        except Exception as error:  # whatever the module raises, the run cannot go on without it
            raise unusable(f"cannot import plugin '{name}'", error, field=VARIABLE) from None
    return names
