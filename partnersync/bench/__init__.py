"""`partnersync bench`: partnersync measured against baselines run in the same run."""
