"""partnersync: webhook-driven event processor for brokerage and banking partner APIs."""

__version__ = "0.1.0"
