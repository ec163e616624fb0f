"""Saxo's error model: {ErrorCode, Message, ModelState?} (and {ErrorInfo: {...}} on orders)."""

from __future__ import annotations

import msgspec


class ErrorInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    ErrorCode: str
    Message: str = ""
    ModelState: dict[str, list[str]] = {}


Info = ErrorInfo  # ErrorEnvelope has a field named like this type


class ErrorEnvelope(msgspec.Struct, kw_only=True, omit_defaults=True):
    ErrorCode: str | None = None
    Message: str | None = None
    ModelState: dict[str, list[str]] = {}
    ErrorInfo: Info | None = None

    def error(self) -> Info | None:
        if self.ErrorInfo is not None:
            return self.ErrorInfo
        if self.ErrorCode is None:
            return None
        return ErrorInfo(
            ErrorCode=self.ErrorCode, Message=self.Message or "", ModelState=self.ModelState
        )
