"""Tradevest's ErrorMessage, identical in every spec (reference §5)."""

from __future__ import annotations

import msgspec


class ErrorDetailsExplanation(msgspec.Struct, kw_only=True):
    code: str
    message: str
    parameter: str | None = None


class ErrorDetails(msgspec.Struct, kw_only=True):
    field: str
    errors: list[ErrorDetailsExplanation] = []


class ErrorMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    message: str
    responseType: str
    requestId: str
    validationString: str | None = None
    errorCode: str | None = None
    errorDetails: list[ErrorDetails] = []
