"""`python -m mpm` runs the command-line interface (also under `torchrun -m mpm`)."""

from mpm.cli import main

raise SystemExit(main())
