"""CRM webhooks as deals: a mapping file per source (`intake/<source>.toml`) says which
payloads mean "closed won" and which payload fields make the deal document.

Pure: the only I/O is reading the mapping files, and nothing is cached here (the service
caches). A mapping file is checked whole when it loads, against the deal's own shape
(`OnboardingRequest`): an unknown key, a misspelt deal field, a format that does not exist or a
picklist mapped to a plan that does not exist fails at load with the file and key named, not
at the first webhook. `Mapping.apply` then either ignores a payload (not closed won), raises
PayloadError naming the payload path it cannot use, or returns the deal document for
`admit(OnboardingRequest, ...)`, whose errors `Mapping.origin` traces back to the payload.

The language is documented where the CS and RevOps teams read it: in the comments of
`intake/hubspot.toml`.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic import model_validator as _model_validator

from models.door import SLUG_PATTERN
from models.journey import OnboardingRequest
from models.playbook import load_toml

_SLUG = re.compile(SLUG_PATTERN)

Scalar = str | int | float | bool
Loc = tuple[str | int, ...]


class MappingError(Exception):
    """A mapping file that cannot be used; the message names the file and the key."""


class PayloadError(Exception):
    """A closed-won payload that cannot make a deal; `field` is the payload path at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Ignored:
    """A payload that is not a closed-won deal: acknowledged, nothing changes."""

    reason: str


@dataclass(frozen=True)
class DealDocument:
    """The deal as plain JSON values, not yet through the door."""

    document: dict[str, Any]


# --- paths ---------------------------------------------------------------------------------

_NAME = re.compile(r"([^.\[\]{}]+)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class PayloadPath:
    """`opportunity.Amount`, `contacts[0].email`: object keys by dots, list items by `[n]`."""

    text: str
    parts: Loc

    @classmethod
    def parse(cls, text: str) -> PayloadPath:
        parts: list[str | int] = []
        for segment in text.split("."):
            match = _NAME.fullmatch(segment)
            if match is None or match[1] != match[1].strip():
                raise ValueError(
                    f"{text!r} is not a path: write keys joined by dots, list items as [n] "
                    "(e.g. opportunity.Amount, contacts[0].email)"
                )
            parts.append(match[1])
            parts += [int(index) for index in _INDEX.findall(match[2])]
        return cls(text, tuple(parts))

    def read(self, payload: Any) -> Any:
        """The value at this path; _MISSING when a key, an item or the value is absent (null
        on the way counts as absent); PayloadError when the payload has another shape."""
        here = payload
        for depth, part in enumerate(self.parts):
            if here is None:
                return _MISSING
            if isinstance(part, int):
                if not isinstance(here, list):
                    raise self._wrong_shape(depth, here, "a list")
                if part >= len(here):
                    return _MISSING
                here = here[part]
            else:
                if not isinstance(here, dict):
                    raise self._wrong_shape(depth, here, "an object")
                if part not in here:
                    return _MISSING
                here = here[part]
        return _MISSING if _empty(here) else here

    def _wrong_shape(self, depth: int, found: Any, wanted: str) -> PayloadError:
        where = self._prefix(depth) or "the payload"
        return PayloadError(self.text, f"{where} is {_kind(found)}, not {wanted}")

    def _prefix(self, depth: int) -> str:
        text = ""
        for part in self.parts[:depth]:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _empty(value: Any) -> bool:
    # CRMs send an unset property as null (Salesforce) or "" (HubSpot).
    if isinstance(value, str):
        return not value.strip()
    return value is None or value == [] or value == {}


def _same(found: Any, value: Scalar) -> bool:
    # true is not 1 here, though Python says so.
    return bool(found == value) and isinstance(found, bool) == isinstance(value, bool)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else "null"


def _text(value: Any) -> str:
    """A payload value as it reads in a template or a map key."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- formats ---------------------------------------------------------------------------------

Format = Literal["number", "epoch_ms", "date", "slug", "lines"]
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"is {_kind(value)}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _epoch_ms(value: Any) -> str:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a time in epoch milliseconds")
    try:
        moment = datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{value} is out of range for epoch milliseconds") from None
    return moment.isoformat().replace("+00:00", "Z")


def _date(value: Any) -> str:
    try:
        if not isinstance(value, str) or not _DAY.match(value.strip()):
            raise ValueError
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return f"{day.isoformat()}T00:00:00Z"


def _slug(value: Any) -> str:
    ascii_text = unicodedata.normalize("NFKD", _text(value)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:63].rstrip("-")
    if not slug:
        raise ValueError(f"{value!r} has no letters or digits to make an id of")
    return slug


def _lines(value: Any) -> list[str]:
    if not isinstance(value, str):
        raise ValueError(f"is {_kind(value)}, not text")
    return [line.strip() for line in value.splitlines() if line.strip()]


_FORMATS = {"number": _number, "epoch_ms": _epoch_ms, "date": _date, "slug": _slug}


# --- the file -------------------------------------------------------------------------------


def _one_or_more(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


class Reading(BaseModel):
    """A table in `[deal]` that reads the payload (see intake/hubspot.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    template: str | None = None
    map: dict[str, Scalar] | None = Field(default=None, min_length=1)
    keep_unmapped: bool = False
    format: Format | None = None
    default: Scalar | None = None
    optional: bool = False

    @_model_validator(mode="after")
    def _well_formed(self) -> Reading:
        if (self.path is None) == (self.template is None):
            raise ValueError("give either path or template")
        if self.keep_unmapped and self.map is None:
            raise ValueError("keep_unmapped without a map")
        if self.default is not None and self.optional:
            raise ValueError("give default or optional, not both")
        if self.path is not None:
            PayloadPath.parse(self.path)
        self.placeholders()
        return self

    def placeholders(self) -> list[tuple[str, PayloadPath | None]]:
        """The template as (literal text, path to fill in after it) pairs."""
        if self.template is None:
            return []
        pieces: list[tuple[str, PayloadPath | None]] = []
        try:
            parsed = list(string.Formatter().parse(self.template))
        except ValueError as error:
            raise ValueError(
                f"template: {error} (write {{{{ and }}}} for literal braces)"
            ) from None
        for literal, name, spec, conversion in parsed:
            if name is None:
                pieces.append((literal, None))
                continue
            if spec or conversion or not name:
                raise ValueError(f"template: {{{name}}} must be a path, e.g. {{hs_object_id}}")
            pieces.append((literal, PayloadPath.parse(name)))
        if not any(path for _, path in pieces):
            raise ValueError("template: no {path} in it; write a plain string instead")
        return pieces

    def origin(self) -> str:
        if self.path is not None:
            return self.path
        return ", ".join(path.text for _, path in self.placeholders() if path)


class MappingFile(BaseModel):
    """The shape of a mapping file; `deal` is checked against the deal by `_compile`."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    closed_won: Annotated[
        dict[str, Annotated[list[Scalar], BeforeValidator(_one_or_more), Field(min_length=1)]],
        Field(min_length=1),
    ]
    deal: dict[str, Any]

    @_model_validator(mode="after")
    def _paths(self) -> MappingFile:
        for path in self.closed_won:
            PayloadPath.parse(path)
        return self


# --- the deal's shape, from OnboardingRequest --------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    kind: Literal["value", "list", "object", "people"]
    check: TypeAdapter[Any] | None = None  # a value, or a list's item
    fields: dict[str, tuple[_Shape, bool]] | None = None  # an object's: shape, required


def _shape_of(model: type[BaseModel]) -> _Shape:
    fields: dict[str, tuple[_Shape, bool]] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        item = get_args(annotation)[0] if get_origin(annotation) is list else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            shape = _shape_of(annotation)
        elif isinstance(item, type) and issubclass(item, BaseModel):
            shape = _Shape("people")
        elif item is not None:
            shape = _Shape("list", TypeAdapter(item))
        else:
            shape = _Shape("value", TypeAdapter(info.rebuild_annotation()))
        fields[name] = (shape, info.is_required())
    return _Shape("object", fields=fields)


_DEAL = _shape_of(OnboardingRequest)


# --- compiled mappings ---------------------------------------------------------------------

# A node of the deal tree: a literal, a Reading, a list of nodes, or an object of nodes.
Node = Scalar | Reading | list["Node"] | dict[str, "Node"]
_OMIT: Any = object()


@dataclass(frozen=True)
class Condition:
    path: PayloadPath
    values: tuple[Scalar, ...]

    def refusal(self, payload: Any) -> str | None:
        """Why the payload is not closed won by this condition, or None when it holds."""
        found = self.path.read(payload)
        wanted = " or ".join(repr(v) for v in self.values)
        if found is _MISSING:
            return f"{self.path.text} is missing, not closed won ({wanted})"
        if any(_same(found, value) for value in self.values):
            return None
        return f"{self.path.text} is {found!r}, not closed won ({wanted})"


@dataclass(frozen=True)
class Mapping:
    """One CRM's mapping: the conditions that mean closed won, and the deal's fields."""

    source: str
    description: str
    conditions: tuple[Condition, ...]
    deal: dict[str, Node]
    origins: dict[Loc, str]

    def apply(self, payload: Any) -> DealDocument | Ignored:
        """The deal a closed-won payload makes, or Ignored saying why it is not one; a
        closed-won payload that cannot make a deal raises PayloadError."""
        if not isinstance(payload, dict):
            raise PayloadError("", f"the payload is {_kind(payload)}, not an object")
        for condition in self.conditions:
            if (reason := condition.refusal(payload)) is not None:
                return Ignored(reason)
        return DealDocument(_build(self.deal, payload, ()))

    def origin(self, loc: tuple[str | int, ...]) -> str | None:
        """The payload path(s) that fed the deal field at `loc` (a pydantic error's), e.g.
        ("champion", "email") -> "champion_email"; None when a literal of the file set it.
        A list item's origin is the whole list's: which reading made item n depends on the
        payload (missing optional items are left out)."""
        for end in range(len(loc), 0, -1):
            if (origin := self.origins.get(tuple(loc[:end]))) is not None:
                return origin
        return None


def _build(node: dict[str, Node], payload: Any, loc: Loc) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, child in node.items():
        here = (*loc, name)
        if isinstance(child, dict):
            document[name] = _build(child, payload, here)
        elif isinstance(child, list):
            items: list[Any] = []
            for item in child:
                value = _value(item, payload, here)
                if value is not _OMIT:
                    items.extend(value if isinstance(value, list) else [value])
            document[name] = items
        elif (value := _value(child, payload, here)) is not _OMIT:
            document[name] = value
    return document


def _value(node: Node, payload: Any, loc: Loc) -> Any:
    if not isinstance(node, Reading):
        return node
    where = ".".join(str(part) for part in loc)
    if node.path is not None:
        path = PayloadPath.parse(node.path)
        found, at = path.read(payload), path.text
    else:
        found, at = _render(node, payload)
    if found is _MISSING:
        if node.default is not None:
            return node.default
        if node.optional:
            return _OMIT
        template = f" (template {node.template!r})" if node.template is not None else ""
        raise PayloadError(at, f"missing or empty; the deal's {where} needs it{template}")
    if node.format != "lines" and isinstance(found, dict | list):
        raise PayloadError(at, f"is {_kind(found)}, not a single value (for the deal's {where})")
    if node.map is not None:
        key = _text(found)
        if key in node.map:
            found = node.map[key]
        elif not node.keep_unmapped:
            mapped = ", ".join(repr(k) for k in node.map)
            raise PayloadError(
                at, f"{key!r} is not mapped for the deal's {where} (mapped: {mapped})"
            )
    if node.format is not None:
        convert = _lines if node.format == "lines" else _FORMATS[node.format]
        try:
            found = convert(found)
        except ValueError as error:
            raise PayloadError(at, f"{error} (for the deal's {where})") from None
    return found


def _render(reading: Reading, payload: Any) -> tuple[Any, str]:
    """A template filled in, or _MISSING and the first placeholder missing."""
    text = ""
    for literal, path in reading.placeholders():
        text += literal
        if path is None:
            continue
        value = path.read(payload)
        if value is _MISSING:
            return _MISSING, path.text
        if isinstance(value, dict | list):
            raise PayloadError(path.text, f"is {_kind(value)}, not a value for a template")
        text += _text(value)
    return text, reading.origin()


# --- loading -------------------------------------------------------------------------------


def load_mapping(directory: Path, source: str) -> Mapping | None:
    """`<directory>/<source>.toml` checked whole; None when `source` is not a slug (it comes
    from a URL: nothing else touches the filesystem) or there is no such file."""
    if not _SLUG.match(source):
        return None
    path = directory / f"{source}.toml"
    if not path.is_file():
        return None
    return _load(path)


def load_mappings(directory: Path) -> dict[str, Mapping]:
    """Every `*.toml` of `directory` by source; MappingError on the first broken one."""
    mappings: dict[str, Mapping] = {}
    for path in sorted(directory.glob("*.toml")):
        if not _SLUG.match(path.stem):
            raise MappingError(
                f"{path}: the file name is the source in the webhook's URL: use 1 to 63 "
                "lowercase letters, digits and hyphens (e.g. hubspot.toml)"
            )
        mappings[path.stem] = _load(path)
    return mappings


def _load(path: Path) -> Mapping:
    file = load_toml(path, MappingFile, MappingError)
    origins: dict[Loc, str] = {}
    try:
        deal = _compile_object(file.deal, _DEAL, (), origins)
    except ValueError as error:
        raise MappingError(f"{path}: {error}") from None
    conditions = tuple(
        Condition(PayloadPath.parse(text), tuple(values))
        for text, values in file.closed_won.items()
    )
    return Mapping(path.stem, file.description, conditions, deal, origins)


def _compile_object(
    table: dict[str, Any], shape: _Shape, loc: Loc, origins: dict[Loc, str]
) -> dict[str, Node]:
    assert shape.fields is not None
    where = _where(loc)
    for name in table:
        if name not in shape.fields:
            known = ", ".join(shape.fields)
            raise ValueError(f"{where}.{name}: not a field of the deal (here: {known})")
    if missing := [n for n, (_, required) in shape.fields.items() if required and n not in table]:
        raise ValueError(f"{where}: missing {', '.join(missing)} (the deal requires them)")
    node: dict[str, Node] = {}
    for name, value in table.items():
        child, _ = shape.fields[name]
        here = (*loc, name)
        if child.kind == "object":
            if not isinstance(value, dict):
                raise ValueError(
                    f"{_where(here)}: a table of its fields ({', '.join(child.fields or {})})"
                )
            node[name] = _compile_object(value, child, here, origins)
        elif child.kind == "list":
            node[name] = _compile_list(value, child, here, origins)
        elif child.kind == "people":
            raise ValueError(f"{_where(here)}: a list of people cannot be mapped from a webhook")
        else:
            node[name] = _compile_value(value, child, here, origins, listed=False)
    return node


def _compile_list(value: Any, shape: _Shape, loc: Loc, origins: dict[Loc, str]) -> list[Node]:
    items = value if isinstance(value, list) else [value]
    if not isinstance(value, list) and not (
        isinstance(value, dict) and value.get("format") == "lines"
    ):
        raise ValueError(f'{_where(loc)}: a list ([...]), or one reading with format = "lines"')
    nodes = [_compile_value(item, shape, loc, origins, listed=True) for item in items]
    paths = [p for item in nodes if isinstance(item, Reading) for p in item.origin().split(", ")]
    if paths:
        origins[loc] = ", ".join(dict.fromkeys(paths))
    return nodes


def _compile_value(
    value: Any, shape: _Shape, loc: Loc, origins: dict[Loc, str], *, listed: bool
) -> Node:
    where = _where(loc)
    if isinstance(value, dict):
        try:
            reading = Reading.model_validate(value)
        except ValidationError as error:
            raise ValueError(_problems(error, where)) from None
        if reading.format == "lines" and not listed:
            raise ValueError(f'{where}.format: "lines" makes a list; {where} is one value')
        if reading.map is not None and reading.format is None:
            for key, mapped in reading.map.items():
                _check(shape, mapped, f"{where}.map.{key}")
        if reading.default is not None:
            _check(shape, reading.default, f"{where}.default")
        if not listed:
            origins[loc] = reading.origin()
        return reading
    if isinstance(value, list) or not isinstance(value, Scalar):
        raise ValueError(
            f"{where}: a string, number or boolean, or a table that reads the payload "
            f"({{ path = ... }} or {{ template = ... }}), not {type(value).__name__}"
        )
    _check(shape, value, where)
    return value


def _check(shape: _Shape, value: Scalar, where: str) -> None:
    assert shape.check is not None
    try:
        shape.check.validate_python(value)
    except ValidationError as error:
        raise ValueError(_problems(error, where, value)) from None


def _problems(error: ValidationError, where: str, value: Any = None) -> str:
    lines = []
    for e in error.errors():
        field = ".".join([where, *(str(part) for part in e["loc"])])
        message = e["msg"].removeprefix("Value error, ")
        given = f" ({value!r} given)" if value is not None else ""
        lines.append(f"{field}: {message}{given}")
    return "; ".join(lines)


def _where(loc: Loc) -> str:
    return ".".join(["deal", *(str(part) for part in loc)])
