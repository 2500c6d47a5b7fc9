"""Benchmarks (not unit tests): `python -m bench.<name>`; each reports ratios against a baseline run in the same process."""
