"""Saxo OpenAPI wire formats; field names as in shared/specs/saxo/*.yaml."""
