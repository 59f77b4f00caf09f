"""The customer's language: gettext catalogs, and dates, times and money in the locale's
conventions (Babel). Independent of mail: any Jinja2 environment (the mail templates, a page
the API serves) can `install` it.

Catalogs live in `locales/<locale>/LC_MESSAGES/messages.po` (`babel.cfg` says what is
extracted into `locales/messages.pot`); `make install` compiles them into `.mo` files, which
are not committed. A checkout whose `.mo` is missing or older than its `.po` (a translation
edited since the last install) is compiled in memory from the `.po`, so what is rendered is
always what the `.po` says.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from datetime import date, datetime
from functools import cache
from gettext import GNUTranslations, NullTranslations
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_time as babel_time
from babel.dates import get_timezone_gmt
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency

# The door checks what a deal may name; re-exported here for whoever renders.
from models.door import DEFAULT_LOCALE as DEFAULT_LOCALE
from models.door import LOCALES
from models.door import is_timezone as is_timezone

if TYPE_CHECKING:  # jinja2 only for whoever installs the filters (not the CLI's imports)
    from jinja2 import Environment
    from jinja2.runtime import Context

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"

SUPPORTED_LOCALES = LOCALES
"""The locales a deal may name (`locale`, checked at the door) and INTERNAL_LOCALE may be.
The templates are written in `en` (DEFAULT_LOCALE), so it needs no catalog."""

# The CLDR data each locale is formatted with. `en` is international English (CLDR's en_GB):
# `1 Dec 2026`, a 24-hour clock, and `US$` where plain `$` could be any dollar.
_FORMAT_LOCALE = {"en": "en_GB", "ja": "ja"}
# Babel's date formats that give `1 Dec 2026` and `2026年12月1日`.
_DATE_FORMAT = {"en": "medium", "ja": "long"}


def supported(locale: str | None) -> str:
    """`locale` when it is one of ours, else the default: a running onboarding decodes what
    its input holds, and a locale a later release dropped must still render."""
    return locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE


def timezone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The IANA zone `name`, else `default` (the deployment's); a name this machine's zone
    database does not know (checked at the door, so only from an older record) is `default`
    too."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


# --- catalogs -------------------------------------------------------------------------------


def catalog_path(locale: str, suffix: str = "po") -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.{suffix}"


@cache
def translations(locale: str) -> NullTranslations:
    """The catalog of `locale` (gettext, ngettext, pgettext); the source language (`en`) and
    an unknown locale translate nothing."""
    locale = supported(locale)
    po, mo = catalog_path(locale), catalog_path(locale, "mo")
    if not po.exists():
        return NullTranslations()
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as file:
            return GNUTranslations(file)
    log.info("compiling %s in memory (`make install` compiles it into %s)", po, mo.name)
    with po.open("rb") as file:
        catalog = read_po(file, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as pybabel compile does
    buffer.seek(0)
    return GNUTranslations(buffer)


def gettext(locale: str, message: str, **values: Any) -> str:
    """`message` in `locale`, with `%(name)s` placeholders filled."""
    text = translations(locale).gettext(message)
    return text % values if values else text


# --- dates, times, money --------------------------------------------------------------------


def _as_zone(value: datetime | date, tz: ZoneInfo | str | None) -> datetime | date:
    """`value` in `tz`; None: in the zone it carries."""
    if isinstance(value, datetime) and tz is not None:
        return value.astimezone(timezone(tz) if isinstance(tz, str) else tz)
    return value


def format_date(value: datetime | date, locale: str, tz: ZoneInfo | str | None = None) -> str:
    """`1 Dec 2026` / `2026年12月1日`: the day in `tz` (a deadline late on the 1st in UTC is
    the 2nd in Tokyo)."""
    locale = supported(locale)
    day = _as_zone(value, tz)
    return babel_date(day, _DATE_FORMAT[locale], locale=_FORMAT_LOCALE[locale])


def zone_label(value: datetime, tz: ZoneInfo | str | None = None) -> str:
    """The zone as people read it: the tz database's abbreviation (`JST`, `CET`, `GMT`,
    `EST`), else the offset (`GMT+04:00`)."""
    local = _as_zone(value, tz)
    assert isinstance(local, datetime)
    name = local.tzname() or ""
    if re.fullmatch(r"[A-Z]{2,5}", name):
        return name
    return get_timezone_gmt(local, locale="en_GB")


def format_time(value: datetime, locale: str, tz: ZoneInfo | str | None = None) -> str:
    """`18:30 JST`: the time of day in `tz`, with the zone shown."""
    locale = supported(locale)
    local = _as_zone(value, tz)
    assert isinstance(local, datetime)
    clock = babel_time(local, "HH:mm", tzinfo=local.tzinfo, locale=_FORMAT_LOCALE[locale])
    return f"{clock} {zone_label(local)}"


def format_datetime(value: datetime, locale: str, tz: ZoneInfo | str | None = None) -> str:
    """`1 Dec 2026, 18:30 JST` / `2026年12月1日 18:30 JST`, in `tz`."""
    locale = supported(locale)
    day, clock = format_date(value, locale, tz), format_time(value, locale, tz)
    return f"{day} {clock}" if locale == "ja" else f"{day}, {clock}"


def format_money(value: float, currency: str, locale: str) -> str:
    """The amount as the locale writes money (Babel's `format_currency`): `€84,000`,
    `US$1,250.50`, `￥84,000` (JPY has no minor unit). A whole amount shows no cents."""
    locale = supported(locale)
    cldr = _FORMAT_LOCALE[locale]
    if float(value).is_integer():
        pattern = Locale.parse(cldr).currency_formats["standard"].pattern
        whole = re.sub(r"\.[0#]+", "", pattern)
        return format_currency(value, currency, whole, locale=cldr, currency_digits=False)
    return format_currency(value, currency, locale=cldr)


# --- people -------------------------------------------------------------------------------------

_CJK = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")


def _east_asian(name: str) -> bool:
    return any(unicodedata.name(char, "").startswith(_CJK) for char in name)


def honorific(name: str, locale: str) -> str:
    """How a customer's person is named in `locale`: `ja` writes the family name with 様
    (`森 健二` → `森 様`); a name in Latin script (`Kenji Mori`), whose order cannot be told, is
    written whole (`Kenji Mori 様`). Other locales: the name as it is."""
    name = " ".join(name.split())
    if supported(locale) != "ja":
        return name
    parts = name.split(" ")
    family = parts[0] if _east_asian(name) and len(parts) > 1 else name
    return f"{family} 様"


# --- Jinja2 --------------------------------------------------------------------------------------


def install(env: Environment, locale: str, default_timezone: str = "UTC") -> Environment:
    """Give `env` the locale's catalog (`{% trans %}`, `_()`, new-style gettext) and the
    filters `date`, `datetime`, `time` and `money` in its conventions. The time zone is the
    template context's `timezone` (an IANA name), else `default_timezone`."""
    from jinja2 import pass_context

    locale = supported(locale)
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]

    def zone(context: Context) -> ZoneInfo:
        return timezone(context.get("timezone"), default_timezone)

    @pass_context
    def date_filter(context: Context, value: datetime | date) -> str:
        return format_date(value, locale, zone(context))

    @pass_context
    def datetime_filter(context: Context, value: datetime) -> str:
        return format_datetime(value, locale, zone(context))

    @pass_context
    def time_filter(context: Context, value: datetime) -> str:
        return format_time(value, locale, zone(context))

    def money_filter(value: float, currency: str) -> str:
        return format_money(value, currency, locale)

    env.filters.update(
        date=date_filter, datetime=datetime_filter, time=time_filter, money=money_filter
    )
    env.globals["locale"] = locale
    return env
