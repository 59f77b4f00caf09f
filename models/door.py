"""The door: the strict checks outside data passes once, where it enters.

Deals, milestones, names and notes typed at the CLI, the CSV export, the CS team's TOML files
(and later an HTTP API) are validated with `admit(...)`, which adds a validation context. The
checks below run only under that context. The same models are decoded by running workflows
(their input, signals and updates, and 0.2.0's histories hold them): a check that refused
what a running onboarding already holds would leave it unable to decode its own input, stuck
on every workflow task. So the models stay as lenient as they were whenever they are decoded,
and are strict only at the door.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sized
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from models.limits import CLOCK_SKEW, MAX_AGE, MAX_DURATION

M = TypeVar("M", bound=BaseModel)

_DOOR = "door"  # the context key; its value is the moment the data entered


def admit(model: type[M], data: Any, *, now: datetime | None = None) -> M:
    """Validate outside data (a JSON text, or Python values) with the door's checks; a
    ValidationError names each wrong field. `now` is when the data enters (default: now)."""
    context = door_context(now)
    try:
        if isinstance(data, str | bytes):
            return model.model_validate_json(data, context=context)
        return model.model_validate(_plain(data), context=context)
    except ValidationError as error:
        raise in_words(error) from None


# --- pydantic's words, for people ---------------------------------------------------------

# The ids people type (accounts, playbooks, CSMs, courses): the rule, not the regex.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SLUG_RULE = "use 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit"


def in_words(error: ValidationError) -> ValidationError:
    """The same errors, where pydantic says a regex or "Field required", in words."""
    details: list[InitErrorDetails] = []
    for e in error.errors():
        pattern = (e.get("ctx") or {}).get("pattern")
        if e["type"] == "string_pattern_mismatch" and pattern == SLUG_PATTERN:
            given = e["input"] if isinstance(e["input"], str) else str(e["input"])
            # Formatted here: the message holds what was given, braces and all.
            kind = PydanticCustomError("not_an_id", f"{given[:80]!r} is not an id: {SLUG_RULE}")
        elif e["type"] == "missing":
            kind = PydanticCustomError("missing", "is required")
        else:
            # As pydantic said it; a message without context is not formatted again.
            kind = PydanticCustomError(e["type"], e["msg"])
        details.append({"type": kind, "loc": e["loc"], "input": e["input"]})
    return ValidationError.from_exception_data(error.title, details)


def door_context(now: datetime | None = None) -> dict[str, datetime]:
    """The context `admit` validates with, for loaders that call pydantic themselves."""
    return {_DOOR: now or datetime.now(UTC)}


def entered_at(info: ValidationInfo) -> datetime | None:
    """When the data being validated entered; None when it is not at the door (decoded)."""
    context = info.context
    return context.get(_DOOR) if isinstance(context, dict) else None


def _plain(data: Any) -> Any:
    # Models already built (a Contact given to UsersAdded) are not validated again by
    # pydantic: turn them back into plain data so the door looks inside them too.
    if isinstance(data, BaseModel):
        return _plain(data.model_dump(exclude_unset=True))
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(value) for value in data]
    return data


# --- text --------------------------------------------------------------------------------------

# Control and format characters (Cc, Cf), lone surrogates (Cs) and the Unicode line and
# paragraph separators: a line break in a name breaks every mail header it goes into.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_SPOKEN = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL"}


def control_character(value: str) -> str | None:
    """The first unsafe character of `value`, said in words with its position, or None."""
    for index, char in enumerate(value):
        category = unicodedata.category(char)
        if category in _UNSAFE_CATEGORIES:
            name = _SPOKEN.get(char) or f"U+{ord(char):04X} {unicodedata.name(char, category)}"
            return f"{name} at position {index + 1}"
    return None


def text(limit: int, *, blank: bool = True) -> AfterValidator:
    """One line of text: no control characters, at most `limit` characters."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value is None or entered_at(info) is None:
            return value
        if where := control_character(value):
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters ({where})",
                {"where": where},
            )
        if len(value) > limit:
            raise PydanticCustomError(
                "too_long",
                "at most {limit} characters ({length} given)",
                {"limit": limit, "length": len(value)},
            )
        if not blank and not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value

    return AfterValidator(check)


def at_most(limit: int, what: str) -> AfterValidator:
    """A list of at most `limit` items."""

    def check(value: Sized, info: ValidationInfo) -> Sized:
        if entered_at(info) is not None and len(value) > limit:
            raise PydanticCustomError(
                "too_many",
                "at most {limit} {what} ({count} given)",
                {"limit": limit, "what": what, "count": len(value)},
            )
        return value

    return AfterValidator(check)


def at_most_value(limit: float) -> AfterValidator:
    def check(value: float, info: ValidationInfo) -> float:
        if entered_at(info) is not None and value > limit:
            raise PydanticCustomError("too_large", "at most {limit}", {"limit": f"{limit:,}"})
        return value

    return AfterValidator(check)


# --- money -------------------------------------------------------------------------------------

# An ISO 4217 code (USD, EUR, JPY): the deal's `currency` and the DEFAULT_CURRENCY setting.
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
CURRENCY_HINT = "an ISO 4217 code of three capital letters, such as USD, EUR or GBP"


def _currency(value: str, info: ValidationInfo) -> str:
    if entered_at(info) is not None and not CURRENCY_CODE.match(value):
        raise PydanticCustomError(
            "currency",
            "must be {hint} ({given} given)",
            {"hint": CURRENCY_HINT, "given": repr(value)},
        )
    return value


currency = AfterValidator(_currency)


# --- language and time zone ----------------------------------------------------------------

# The locales customer mail is written in (infra/i18n.py renders them); the default is the
# language the templates are written in.
DEFAULT_LOCALE = "en"
LOCALES = ("en", "ja")


def _locale(value: str, info: ValidationInfo) -> str:
    if entered_at(info) is not None and value not in LOCALES:
        raise PydanticCustomError(
            "locale",
            "must be one of {accepted} ({given} given)",
            {"accepted": ", ".join(LOCALES), "given": repr(value)},
        )
    return value


locale = AfterValidator(_locale)


def is_timezone(name: str) -> bool:
    """An IANA time zone name this machine's zone database knows (`Asia/Tokyo`, `UTC`)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only where a zone is checked

    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


TIMEZONE_HINT = "an IANA time zone name, such as Asia/Tokyo, Europe/Berlin or UTC"


def _timezone(value: str, info: ValidationInfo) -> str:
    if entered_at(info) is not None and not is_timezone(value):
        raise PydanticCustomError(
            "timezone",
            "must be {hint} ({given} given)",
            {"hint": TIMEZONE_HINT, "given": repr(value)[:80]},
        )
    return value


timezone = AfterValidator(_timezone)


# --- email addresses ---------------------------------------------------------------------------

# email-validator accepts every character RFC 5322 allows before the @, such as `/`, `|`,
# `{` or `*`. An address names people here: these are typos or tricks, and unsafe in a file
# name or a log line. The part before the @ is ASCII: another script there needs SMTPUTF8 from
# every server on the way, which we cannot count on (a domain in any script is fine: it is
# sent in its ASCII form).
_LOCAL_EXTRA = set(".-_+'")


def _safe_address(value: str, info: ValidationInfo) -> str:
    if entered_at(info) is None:
        return value
    local = value.rpartition("@")[0]
    if where := control_character(value):
        raise PydanticCustomError(
            "control_character", "must not contain control characters ({where})", {"where": where}
        )
    if odd := sorted(
        {c for c in local if not (c.isascii() and c.isalnum()) and c not in _LOCAL_EXTRA}
    ):
        raise PydanticCustomError(
            "unsafe_address",
            "the part before the @ may hold only ASCII letters, digits and . - _ + ' (not {odd})",
            {"odd": " ".join(odd)},
        )
    return value


safe_address = AfterValidator(_safe_address)


def distinct_addresses(what: str) -> AfterValidator:
    """People listed once each: the same address twice (case ignored) is refused, named by
    position so the address itself is not repeated into logs."""

    def check(people: list[Any], info: ValidationInfo) -> list[Any]:
        if entered_at(info) is None:
            return people
        first: dict[str, int] = {}
        for number, person in enumerate(people, start=1):
            seen = first.setdefault(person.email.casefold(), number)
            if seen != number:
                raise PydanticCustomError(
                    "duplicate",
                    "{what} {number} has the same email address as {what} {seen} (case ignored)",
                    {"what": what, "number": number, "seen": seen},
                )
        return people

    return AfterValidator(check)


# --- time --------------------------------------------------------------------------------------


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _happened(value: datetime | None, info: ValidationInfo) -> datetime | None:
    """A moment something already happened: not in the future beyond clock skew, not older
    than any onboarding lasts (a typo of the year, a default of 1970)."""
    now = entered_at(info)
    if value is None or now is None:
        return value
    if value > now + CLOCK_SKEW:
        raise PydanticCustomError(
            "future",
            "is in the future ({at}; it is {now} here, {skew} minutes of clock skew allowed)",
            {"at": _utc(value), "now": _utc(now), "skew": CLOCK_SKEW // timedelta(minutes=1)},
        )
    if value < now - MAX_AGE:
        raise PydanticCustomError(
            "too_old",
            "is more than {years} years ago ({at})",
            {"at": _utc(value), "years": MAX_AGE.days // 365},
        )
    return value


happened = AfterValidator(_happened)


# --- durations (the CS team's TOML files) ------------------------------------------------------

_WITH_UNIT = re.compile(r"^\s*\d+\s*[smhdw]\s*$")
_ISO_8601 = re.compile(r"^\s*-?P[0-9.,YMWDTHS]+\s*$")


def _unit_required(value: object, info: ValidationInfo) -> object:
    # pydantic reads a bare number as seconds: `deadline = 45` meant 45 days to whoever
    # wrote it, and 45 seconds to the workflow.
    if entered_at(info) is None:
        return value
    if isinstance(value, str) and (_WITH_UNIT.match(value) or _ISO_8601.match(value)):
        return value
    hint = f" (a bare {value} would be read as seconds)" if isinstance(value, int | float) else ""
    raise PydanticCustomError(
        "duration_unit",
        'needs a unit: "14d", "36h", "30m", "90s", "2w", or ISO 8601 such as "P14D"{hint}',
        {"hint": hint},
    )


def _not_too_long(value: timedelta, info: ValidationInfo) -> timedelta:
    if entered_at(info) is not None and value > MAX_DURATION:
        raise PydanticCustomError(
            "duration_too_long", "at most {days} days", {"days": MAX_DURATION.days}
        )
    return value


unit_required = BeforeValidator(_unit_required)
not_too_long = AfterValidator(_not_too_long)


# --- files ---------------------------------------------------------------------------------------


class Refused(Exception):
    """Outside data refused as a whole; the message names the file and where in it."""


def read_bytes(path: Path, limit: int, what: str) -> bytes:
    """A file's bytes, refused beyond `limit` (read no further than that)."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise Refused(f"cannot read {path}: {error.strerror}") from None
    if len(data) > limit:
        raise Refused(f"{path}: larger than {_size(limit)}, the most a {what} may be")
    return data


def decode_utf8(path: Path, data: bytes) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped), or Refused naming the first
    bad byte's line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Refused(f"{path}: {not_utf8(data, error.start)}") from None


def not_utf8(data: bytes, start: int) -> str:
    line = data.count(b"\n", 0, start) + 1
    # The column as an editor counts it: characters, not bytes, since the line began.
    column = len(data[data.rfind(b"\n", 0, start) + 1 : start].decode("utf-8", "replace")) + 1
    return (
        f"line {line}, column {column}: not UTF-8 text (byte 0x{data[start]:02x}); "
        "save the file as UTF-8"
    )


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit:,} bytes"
