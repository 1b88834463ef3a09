"""The synthetic pedestrian benchmark: `config` (the dials), `people`, `scenes`, `nuisances`,
`plan` (who appears where) and `generate` (`generate_benchmark`, the files on disk)."""
