"""MPM-LTL: mask pooling, local-level triplet loss and mask-guided hard triplet selection."""

__version__ = "0.1.0"
