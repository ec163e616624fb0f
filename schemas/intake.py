"""What every partner's intake may answer about a body it cannot take in."""

from __future__ import annotations


class Unusable(Exception):
    """A body that cannot be taken in; `error` is the problem's code (invalid_body, …),
    `detail` the sentence the sender gets back."""

    def __init__(self, error: str, detail: str):
        super().__init__(detail)
        self.error = error
        self.detail = detail
