"""MPM-LTL: mask pooling, local-level triplet loss and mask-guided hard triplet selection."""

from mpm.numerics import apply_portable_numerics

apply_portable_numerics()

__version__ = "0.1.0"
