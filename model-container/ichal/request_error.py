"""``RequestError``: a scoring request refused, with the HTTP status, code and reason the contract answers.

Raised by the scoring core (``ichal.scoring``) and the HTTP server (``ichal.serve.server``) alike; it lives
here so that the core does not depend on its server.
"""

from __future__ import annotations


class RequestError(Exception):
    """A request refused; ``status`` is 4xx, ``code`` machine-readable, ``reason`` one line."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.status = status
        self.code = code
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}
