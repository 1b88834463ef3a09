"""Subcommands of the `mpm` command line, one module each (see `mpm.cli`)."""
