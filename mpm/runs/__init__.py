"""The run pipeline: a config in, a stored record out.

`paths` (project, results, cache and data roots), `runtime` (device, DDP, seeds), `checkpoints`,
`optimization`, `batches` and `objective` (what one epoch and one step do), `trainer` (the three
stages), `activations` and `inference` (what a record stores of a trained network), `store` and
`environment` (the record on disk), `lock`, `experiments` (run or load) and `studies` (the book's
sets of runs).
"""
