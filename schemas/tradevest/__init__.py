"""Tradevest wire formats (docs.tradevest.ai; see shared/reference/tradevest-api.md)."""
