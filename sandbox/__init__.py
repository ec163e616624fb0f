"""A faithful fake of the partner APIs, for `make run`, tests and benchmarks.

It talks HTTP only and knows nothing of partnersync's internals.
"""
