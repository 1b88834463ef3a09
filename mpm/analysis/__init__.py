"""What the book's chapters compute and draw: tables and figures from stored runs, the benchmark
and the masks. Nothing else in `mpm` imports this package."""
