"""The optional libraries: which extra of `embedlab` installs each, and the one line that refuses a feature when its
library is missing.

A user installs only what the README names (`scripts/setup.sh examples`), so nothing outside the feature that needs
an optional library may import it: each is imported inside that feature, and a recipe or command that asks for the
feature is refused before anything is created, with one line naming the extra to install.
"""

from __future__ import annotations

import importlib.util

from pipeline.errors import PipelineError

# import name → the extra of embedlab that installs it
EXTRA_OF = {
    "peft": "peft",
    "gensim": "vectors",
    "ray": "ray",
    "tensorboard": "tensorboard",
    "gguf": "gguf",
    "bm25s": "retrieval",
}

# What each experiment tracker Accelerate supports needs installed (the first is the one to install).
TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "comet_ml": ("comet_ml",),
    "aim": ("aim",),
    "clearml": ("clearml",),
    "dvclive": ("dvclive",),
}


def installed(module: str) -> bool:
    """Whether `module` can be imported (without importing it; a module hidden as `sys.modules[name] = None` is
    not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a half-initialised entry in sys.modules
        return False


def missing_extra(module: str, feature: str, field: str | None = None) -> PipelineError:
    """`FEATURE needs MODULE: pip install 'embedlab[EXTRA]'`, naming the field that asked for it."""
    return PipelineError(f"{feature} needs {module}: pip install 'embedlab[{EXTRA_OF[module]}]'", field=field)


def require(module: str, feature: str, field: str | None = None) -> None:
    """Refuse `feature` with one line when `module` is not installed."""
    if not installed(module):
        raise missing_extra(module, feature, field)
