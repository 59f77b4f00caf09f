"""A request body that cannot be used, as named fields (the API's 422), and the checks every
route shares to say so."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError


class Unprocessable(Exception):
    """A body that cannot be used: `errors` are (field, message) pairs, each named."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in errors))
        self.errors = errors


Origin = Callable[[tuple[str | int, ...]], str | None]


def unprocessable(error: ValidationError, origin: Origin | None = None) -> Unprocessable:
    """A pydantic ValidationError as named fields, in the CLI's words; `origin` maps a deal
    field to the payload field it came from (a webhook)."""
    pairs = []
    for e in error.errors():
        field = ".".join(str(part) for part in e["loc"])
        source = origin(e["loc"]) if origin and e["loc"] else None
        message = e["msg"].removeprefix("Value error, ")
        pairs.append((f"{field} (from {source})" if source else field, message))
    return Unprocessable(pairs)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise Unprocessable([("", f"Invalid JSON: {error}")]) from None


def check_key(key: str) -> None:
    """An Idempotency-Key is printable text (it is hashed, never stored or logged)."""
    if not key.strip() or not key.isprintable():
        raise Unprocessable([("Idempotency-Key", "printable characters, not empty")])
