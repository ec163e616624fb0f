"""Saxo's published OpenAPI specs as the sandbox's contract (specs/*.yaml, Saxo's own files).

Every request under /saxo/openapi is validated against the operation Saxo publishes before
the sandbox acts on it: a violation is answered as Saxo answers one (400, ErrorCode from the
operation's own list, ModelState naming each field), so nothing Saxo would refuse gets
through. Every response the sandbox gives is validated too; a violation is the sandbox's own
bug and is counted (GET /_sandbox/contract), and the test suite fails on any.

`/hist/v1/transactions` is not in the specs we have (hist.yaml lacks it): it is checked
by hand in the sandbox and counted here as `unspecified`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathNotFound, ServerNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS = Path(__file__).parent / "specs"
SERVER = "https://gateway.saxobank.com"
BASE = "/sim/openapi"  # the specs' server path; the sandbox mounts the same at /saxo/openapi
SERVICES = {"cm": "cm.yaml", "atr": "atr.yaml", "ens": "ens.yaml", "hist": "hist.yaml"}
UNSPECIFIED = ("/hist/v1/transactions",)  # documented, but not in the published spec files
# The ErrorCode a refused request gets, in order of preference, from the operation's 400 list.
REFUSAL_CODES = ("InvalidModelState", "InvalidRequest", "InputDataInvalid", "InvalidInput")


# Where a published file contradicts Saxo's own documentation, the documentation wins, once,
# here, with the reason (shown in GET /_sandbox/contract): (service, schema, patch, reason).
ERRATA: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (
        "ens", "ActivityResponse", {"additionalProperties": True},
        "ens.yaml models only the base of Saxo's polymorphic activities (additionalProperties: "
        "false); the ENS learn pages document each type's own fields (AccountFundings: Amount, "
        "CurrencyCode, FundingEvent, FundingType, PositionId, ExternalExecutionReference, ...).",
    ),
)  # fmt: skip

# Where an operation documents a body on an answer that HTTP cannot carry one on (a 204),
# the body's status is taken as 200 too: (service, path, method, status given, reason).
RESPONSE_ERRATA: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "cm", "/cm/v1/signups/completeapplication/{SignUpId}", "put", "204",
        "cm.yaml documents CompleteApplicationResponse (ApplicationStatus, ErrorMessage, "
        "AccountDetails) on a 204 No Content, which carries no body in HTTP/1.1: the body comes "
        "with a 200 [inferred].",
    ),
)  # fmt: skip


class _Request:
    """The openapi-core request protocol over what the sandbox received."""

    def __init__(
        self, method: str, path: str, query: Iterable[tuple[str, str]], headers: dict[str, str],
        body: bytes, content_type: str,
    ) -> None:  # fmt: skip
        self.host_url = SERVER
        self.path = BASE + path
        self.method = method.lower()
        self.body = body or None
        self.content_type = content_type or "application/json"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)), header=Headers(headers)
        )


class _Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = Headers(headers)
        self.data = body
        self.content_type = headers.get("content-type", "application/json").split(";")[0]


def _messages(exc: BaseException) -> dict[str, list[str]]:
    """ModelState-style {field path: [messages]} from an openapi-core error chain."""
    out: dict[str, list[str]] = {}
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        for schema_error in getattr(e, "schema_errors", ()) or ():
            for leaf in _leaves(schema_error):
                where = ".".join(str(p) for p in leaf.absolute_path) or "$"
                out.setdefault(where, []).append(leaf.message)
        for inner in getattr(e, "errors", ()) or ():
            if isinstance(inner, BaseException):
                stack.append(inner)
        name = getattr(e, "name", None)
        if name and not getattr(e, "schema_errors", None) and not getattr(e, "errors", None):
            out.setdefault(str(name), []).append(str(e))
        if e.__cause__ is not None:
            stack.append(e.__cause__)
    if not out:
        out["$"] = [str(exc)]
    return out


def _leaves(error: Any) -> list[Any]:
    context = list(getattr(error, "context", None) or ())
    if error.validator in ("anyOf", "oneOf") and context:
        return [leaf for c in context for leaf in _leaves(c)]
    return [error]


class Contract:
    def __init__(self, specs: Path = SPECS) -> None:
        self.specs = specs
        self.checked: Counter[str] = Counter()  # operationId -> requests validated
        self.refused: Counter[str] = Counter()  # operationId -> requests refused
        self.responses: Counter[str] = Counter()  # operationId -> responses validated
        self.violations: list[dict[str, Any]] = []  # the sandbox's own responses off-contract
        self.unspecified: Counter[str] = Counter()

    @cached_property
    def _services(self) -> dict[str, tuple[OpenAPI, list[tuple[re.Pattern[str], dict[str, Any]]]]]:
        """service -> (validator, [(path pattern, path item)]), loaded on first use."""
        out = {}
        for service, name in SERVICES.items():
            document = yaml.safe_load((self.specs / name).read_text())
            for erratum_service, schema, patch, _ in ERRATA:
                if erratum_service == service:
                    document["components"]["schemas"][schema].update(patch)
            for erratum_service, path, method, status, _ in RESPONSE_ERRATA:
                if erratum_service == service:
                    responses = document["paths"][path][method]["responses"]
                    responses["200"] = responses[status]
            _bearer_for_oauth(document)
            paths = [
                (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(t)) + "$"), item)
                for t, item in document["paths"].items()
            ]
            out[service] = (OpenAPI.from_dict(document), paths)
        return out

    def load(self) -> None:
        """Loads the specs now (they load on first use otherwise)."""
        self._services  # noqa: B018

    def _api(self, path: str) -> OpenAPI | None:
        found = self._services.get(path.strip("/").split("/", 1)[0])
        return None if found is None else found[0]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """(operationId, operation) of the spec's path template matching `path`, if any."""
        found = self._services.get(path.strip("/").split("/", 1)[0])
        for pattern, item in found[1] if found else ():
            if pattern.match(path) and method.lower() in item:
                op = item[method.lower()]
                return str(op.get("operationId", f"{method} {pattern.pattern}")), op
        return None

    def check_request(
        self, method: str, path: str, query: Iterable[tuple[str, str]],
        headers: dict[str, str], body: bytes,
    ) -> tuple[str, dict[str, list[str]]] | None:  # fmt: skip
        """None when the request is valid (or unspecified); else (ErrorCode, ModelState)."""
        if path.startswith(UNSPECIFIED):
            self.unspecified[f"{method} {path}"] += 1
            return None
        found = self.operation(method, path)
        api = self._api(path)
        if found is None or api is None:
            return "NotFound", {"$": [f"{method} {path} is not an operation Saxo publishes"]}
        op_id, op = found
        self.checked[op_id] += 1
        request = _Request(method, path, query, headers, body, headers.get("content-type", ""))
        try:
            api.validate_request(request)
        except (PathNotFound, ServerNotFound):
            return "NotFound", {"$": [f"{method} {path} is not an operation Saxo publishes"]}
        except Exception as exc:  # openapi-core's validation errors have no common base
            self.refused[op_id] += 1
            return refusal_code(op), _messages(exc)
        return None

    def check_response(
        self, method: str, path: str, query: Iterable[tuple[str, str]],
        headers: dict[str, str], body: bytes, status: int, response_headers: dict[str, str],
        response_body: bytes,
    ) -> None:  # fmt: skip
        if path.startswith(UNSPECIFIED):
            return
        found, api = self.operation(method, path), self._api(path)
        if found is None or api is None:
            return
        op_id, op = found
        self.responses[op_id] += 1
        problems: dict[str, list[str]] = {}
        if str(status) not in op.get("responses", {}):
            problems["status"] = [f"{status} is not a documented response"]
        else:
            request = _Request(method, path, query, headers, body, headers.get("content-type", ""))
            if status == 204:
                # A 204 has no content (RFC 9110 §15.3.5), whatever a schema says: cm.yaml
                # gives completeapplication's 204 a CompleteApplicationResponse. Not checked.
                return
            data = response_body if op["responses"][str(status)].get("content") else b""
            try:
                api.validate_response(request, _Response(status, response_headers, data))
            except Exception as exc:  # see check_request
                problems = _messages(exc)
        if problems:
            self.violations.append(
                {"operation": op_id, "method": method, "path": path, "status": status,
                 "problems": problems, "body": body_excerpt(response_body)}
            )  # fmt: skip

    def report(self) -> dict[str, Any]:
        by_op: Counter[str] = Counter(v["operation"] for v in self.violations)
        return {
            "operations": {
                op: {"requests": self.checked[op], "refused": self.refused[op],
                     "responses": self.responses[op], "responseViolations": by_op[op]}
                for op in sorted(set(self.checked) | set(self.responses))
            },
            "unspecified": dict(self.unspecified),
            "errata": [{"service": e[0], "schema": e[1], "reason": e[3]} for e in ERRATA]
            + [{"service": e[0], "operation": f"{e[2].upper()} {e[1]}", "reason": e[4]}
               for e in RESPONSE_ERRATA],
            "violations": self.violations[-50:],
            "violationCount": len(self.violations),
        }  # fmt: skip


def _bearer_for_oauth(document: dict[str, Any]) -> None:
    """Checks Saxo's oauth2 schemes as what they are on the wire, `Authorization: Bearer`.

    openapi-core cannot check an oauth2 scheme: it warns on every request and lets it pass,
    so with oauth2 as one alternative of each operation's `security` nothing was checked."""
    schemes = document.get("components", {}).get("securitySchemes", {})
    for name, scheme in schemes.items():
        if scheme.get("type") == "oauth2":
            schemes[name] = {"type": "http", "scheme": "bearer"}


def refusal_code(op: dict[str, Any]) -> str:
    """The ErrorCode Saxo lists for a refused request of this operation."""
    bad = op.get("responses", {}).get("400", {})
    schema = bad.get("content", {}).get("application/json", {}).get("schema", {})
    codes = schema.get("properties", {}).get("ErrorCode", {}).get("enum", [])
    return next((c for c in REFUSAL_CODES if c in codes), codes[0] if codes else "InvalidRequest")


def body_excerpt(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
