"""Benchmarks, run by ``make bench`` (``python -m tests.benchmarks``); never part of ``make test``."""
