"""Datasets: readers for the real benchmarks, the synthetic benchmark, transforms and samplers."""
