"""Fault injection: rates in [0, 1] per fault, and a delay range, set over HTTP.

`script` makes a fault deterministic: a list of `{"fault", "method"?, "path"?}`, each used
once, by the first request of that method whose path contains `path` (in order), e.g.
`{"script": [{"fault": "timeout", "method": "POST", "path": "/products"}]}`."""

from __future__ import annotations

import asyncio
import random

RATES = ("duplicate", "reorder", "drop_webhook", "http_5xx", "timeout", "rate_limit")


class FaultError(ValueError):
    pass


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self.rates: dict[str, float] = {}
        self.delay_ms: tuple[int, int] | None = None
        self.timeout_ms = 15_000  # how long a "lost" response hangs before the socket closes
        self.random = random.Random(seed)
        self.injected: dict[str, int] = dict.fromkeys(RATES, 0)
        self.script: list[dict[str, str]] = []

    def configure(self, spec: object) -> None:
        if not isinstance(spec, dict):
            raise FaultError("faults must be a JSON object")
        rates: dict[str, float] = {}
        delay: tuple[int, int] | None = None
        timeout_ms = self.timeout_ms
        script: list[dict[str, str]] = []
        for name, value in spec.items():
            if name == "script":
                script = _script(value)
            elif name in RATES:
                if not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise FaultError(f"{name} must be a number in [0, 1]")
                rates[name] = float(value)
            elif name == "delay_ms":
                if (
                    not isinstance(value, list)
                    or len(value) != 2
                    or not all(isinstance(v, int) and v >= 0 for v in value)
                    or value[0] > value[1]
                ):
                    raise FaultError("delay_ms must be [min, max] in milliseconds")
                delay = (value[0], value[1])
            elif name == "timeout_ms":
                if not isinstance(value, int) or value < 0:
                    raise FaultError("timeout_ms must be a non-negative integer")
                timeout_ms = value
            else:
                raise FaultError(
                    f"unknown fault {name!r}; known: {', '.join(RATES)}, delay_ms, timeout_ms, script"
                )
        self.rates, self.delay_ms, self.timeout_ms = rates, delay, timeout_ms
        self.script = script

    def show(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.rates)
        if self.delay_ms:
            out["delay_ms"] = list(self.delay_ms)
        out["timeout_ms"] = self.timeout_ms
        out["injected"] = dict(self.injected)
        out["script"] = list(self.script)
        return out

    def roll(self, name: str, method: str | None = None, path: str | None = None) -> bool:
        """Whether to inject fault `name` into this request: a scripted entry that matches
        it (used up), else the fault's rate."""
        for i, entry in enumerate(self.script):
            if (
                entry["fault"] == name
                and entry.get("method", method) == method
                and entry.get("path", "") in (path or "")
            ):
                del self.script[i]
                self.injected[name] += 1
                return True
        hit = self.random.random() < self.rates.get(name, 0.0)
        if hit:
            self.injected[name] += 1
        return hit

    async def delay(self) -> None:
        if self.delay_ms:
            await asyncio.sleep(self.random.uniform(*self.delay_ms) / 1000)


def _script(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise FaultError("script must be a list of {fault, method?, path?}")
    out: list[dict[str, str]] = []
    for entry in value:
        if (
            not isinstance(entry, dict)
            or entry.get("fault") not in RATES
            or not set(entry) <= {"fault", "method", "path"}
            or not all(isinstance(v, str) for v in entry.values())
        ):
            raise FaultError(
                f"script entry {entry!r}: needs fault (one of {', '.join(RATES)}), "
                "optional method and path strings"
            )
        out.append(dict(entry))
    return out
