"""`python -m pipeline ...` is the same as the `pipeline` console script (used by `accelerate launch -m`)."""

from pipeline.cli import main

raise SystemExit(main())
