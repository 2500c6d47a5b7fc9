"""Peer services for bench/http_bench.py; each runs in its own virtual environment (make bench-peers)."""
