"""``get_current_time``: local date and time for an IANA zone, a UTC offset or a place name."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from agents import RunContextWrapper, function_tool

from bot.context import ToolConfig, TurnContext
from bot.tools.failure import tool_failed
from bot.tools.open_meteo import ServiceError
from bot.tools.places import Resolved, Unresolved, describe_unresolved, geocode

logger = logging.getLogger(__name__)

_OFFSET = re.compile(r"^(?:UTC|GMT)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Zone:
    """A resolved time zone and the name to show for it."""

    tz: tzinfo
    name: str


@functools.cache
def _zone_names() -> dict[str, str]:
    """Lower-cased IANA names -> canonical spelling (reading tzdata once)."""
    return {name.lower(): name for name in available_timezones()}


def parse_zone(text: str) -> Zone | None:
    """``"Europe/Paris"``, ``"utc"``, ``"America/New York"``, ``"UTC+5:30"`` -> a zone.

    Only names tzdata lists are looked up (never arbitrary paths); anything else is ``None`` so
    the caller can try it as a place name.
    """
    cleaned = text.strip()
    offset = _OFFSET.match(cleaned)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > timedelta(hours=14):
            return None
        delta = -delta if sign == "-" else delta
        return Zone(timezone(delta), f"UTC{format_offset(delta)}")
    if cleaned.upper() in ("Z", "UTC", "GMT"):
        return Zone(UTC, "UTC")
    name = _zone_names().get(cleaned.replace(" ", "_").lower())
    if name is None:
        return None
    try:
        return Zone(ZoneInfo(name), name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_offset(offset: timedelta | None) -> str:
    """``timedelta(hours=5, minutes=30)`` -> ``+05:30``."""
    total = int((offset or timedelta()).total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def format_local_time(now: datetime, zone: Zone, place: str | None = None) -> str:
    """The tool's answer for one moment ``now`` (timezone-aware) in ``zone``."""
    local = now.astimezone(zone.tz)
    offset = format_offset(local.utcoffset())
    abbreviation = local.tzname() or ""
    # Zones without a real abbreviation report the offset ("+04", "UTC+05:30"); saying it
    # twice helps nobody.
    is_offset = abbreviation.startswith(("+", "-", "UTC"))
    shown_abbreviation = f", {abbreviation}" if abbreviation and not is_offset else ""
    where = f"{place} ({zone.name})" if place else zone.name
    return (
        f"Local time in {where}: {local:%A}, {local.day} {local:%B %Y}, {local:%H:%M} "
        f"(UTC{offset}{shown_abbreviation}). ISO 8601: {local.isoformat(timespec='seconds')}."
    )


def namesakes_elsewhere(resolved: Resolved) -> str:
    """A note on same-named places whose clocks differ from the chosen one's."""
    differing = [p for p in resolved.others if p.timezone and p.timezone != resolved.place.timezone]
    if not differing:
        return ""
    listed = "; ".join(f"{p.label} ({p.timezone})" for p in differing)
    return (
        f"\nNote: other places are called {resolved.place.name} in other time zones: {listed}. "
        "Tell the user which one you used; if they meant another, call again with its region "
        "or country."
    )


async def current_time_answer(config: ToolConfig, place: str, now: datetime) -> str:
    """The tool's answer; raises ``ServiceError`` when a place name cannot be looked up."""
    if not place.strip():
        return "No place or time zone was given. Ask the user where they want the time for."
    zone = parse_zone(place)
    if zone is not None:
        return format_local_time(now, zone)
    resolution = await geocode(config, place)
    if isinstance(resolution, Unresolved):
        return (
            f"{place!r} is not a known time zone. {describe_unresolved(resolution)} "
            "An IANA zone such as 'Europe/Paris' or 'America/New_York' also works."
        )
    found = resolution.place
    found_zone = parse_zone(found.timezone) if found.timezone else None
    if found_zone is None:
        logger.warning("place search gave no usable time zone for %s", found.label)
        return (
            f"Found {found.label}, but its time zone is unknown. Call again with an IANA zone "
            "such as 'Europe/Paris' if you know it."
        )
    return format_local_time(now, found_zone, found.label) + namesakes_elsewhere(resolution)


@function_tool
async def get_current_time(ctx: RunContextWrapper[TurnContext], place: str) -> str:
    """Get the current local date, time, weekday and UTC offset somewhere.

    Call this whenever the user asks what time or date it is somewhere, or needs it to answer
    (e.g. "is it late in Tokyo?", time differences, "what day is it in Sydney?"). Do not guess
    times yourself. If several places share the name and their time zones differ, the answer
    says which one was used and lists the others.

    Args:
        place: An IANA time zone ("Europe/Paris", "America/New_York", "UTC"), a UTC offset
            ("UTC+5:30"), or a place name, city first with optional region or country after
            commas ("Tokyo", "Springfield, Massachusetts").
    """
    try:
        return await current_time_answer(ctx.context.tools, place, datetime.now(UTC))
    except ServiceError as exc:
        return tool_failed(
            ctx, f"{exc} (A time zone name such as 'Europe/Paris' works without it.)"
        )
    except Exception:
        logger.exception("get_current_time failed unexpectedly")
        return tool_failed(
            ctx, "The time lookup failed unexpectedly. Tell the user to try again later."
        )
