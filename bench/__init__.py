"""Benchmarks (not unit tests): `python -m bench.<name>`.

Each reports ratios against a baseline run in the same process.
"""
