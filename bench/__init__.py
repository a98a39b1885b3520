"""The scale benchmark: the operator against a minimal client, side by side, on kwok nodes.

See bench/README.md. Run with `make bench` (or `python -m bench --help`).
"""
