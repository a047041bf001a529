"""``get_weather``: current conditions and a 3-day forecast from Open-Meteo.

Where the place comes from (``places``) and how Open-Meteo is asked (``open_meteo``) live apart;
this module is the tool the model calls and how its answer is worded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

from agents import RunContextWrapper, function_tool

from bot.context import ToolConfig, TurnContext
from bot.tools.failure import tool_failed
from bot.tools.open_meteo import Forecast, Reading, ServiceError, Units, fetch_forecast
from bot.tools.places import Resolved, Unresolved, describe_unresolved, geocode, split_location

logger = logging.getLogger(__name__)

FORECAST_DAYS = 3
"""Today and the next two days: what the tool's docstring promises the model."""

# WMO weather interpretation codes, as documented by Open-Meteo.
WMO_DESCRIPTIONS: Mapping[int, str] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "slight rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "slight snowfall",
    73: "moderate snowfall",
    75: "heavy snowfall",
    77: "snow grains",
    80: "slight rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "slight snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with slight hail",
    99: "thunderstorm with heavy hail",
}


def describe_weather_code(code: int | None) -> str:
    if code is None:
        return "conditions unknown"
    return WMO_DESCRIPTIONS.get(code, f"unknown conditions (WMO code {code})")


def format_reading(reading: Reading) -> str:
    """``20.1°C``, ``65%``, ``12.3 km/h``; ``n/a`` when the model had no value."""
    if reading.value is None:
        return "n/a"
    number = f"{reading.value:g}"
    glue = "" if reading.unit.startswith("°") or reading.unit == "%" else " "
    return f"{number}{glue}{reading.unit}"


def _day_label(iso_date: str) -> str:
    try:
        return f"{iso_date} ({date.fromisoformat(iso_date):%a})"
    except ValueError:
        return iso_date


def format_weather(resolved: Resolved, forecast: Forecast) -> str:
    """The tool's answer: place, conditions now, the next days, and any namesakes."""
    place = resolved.place
    now = forecast.current
    local = now.time.replace("T", " ")
    abbreviation = forecast.timezone_abbreviation
    if abbreviation.startswith(("+", "-")):  # "-03" says nothing the zone name does not
        abbreviation = ""
    zone = " ".join(z for z in (forecast.timezone, abbreviation) if z)
    lines = [
        f"Weather for {place.label} ({place.latitude:.2f}, {place.longitude:.2f}).",
        f"Now (local time {local}{f' {zone}' if zone else ''}): "
        f"{describe_weather_code(now.weather_code)}, {format_reading(now.temperature)} "
        f"(feels like {format_reading(now.apparent_temperature)}), "
        f"humidity {format_reading(now.humidity)}, wind {format_reading(now.wind_speed)}, "
        f"precipitation {format_reading(now.precipitation)}.",
        f"Forecast ({len(forecast.days)} days):",
    ]
    lines.extend(
        f"- {_day_label(day.date)}: {describe_weather_code(day.weather_code)}, "
        f"high {format_reading(day.high)}, low {format_reading(day.low)}, "
        f"chance of precipitation {format_reading(day.precipitation_probability)}"
        for day in forecast.days
    )
    if resolved.others:
        others = "; ".join(p.label for p in resolved.others)
        lines.append(
            f"Note: several places are called {place.name}; this is the most prominent one. "
            f"Others: {others}. Tell the user which one you used; if they meant another, call "
            "again with its region or country."
        )
    return "\n".join(lines)


async def weather_report(config: ToolConfig, location: str, units: Units) -> str:
    """The tool's answer; raises ``ServiceError`` when Open-Meteo cannot be asked."""
    if not location.strip() or not split_location(location).name:
        return "No location was given. Ask the user which place they want the weather for."
    resolution = await geocode(config, location)
    if isinstance(resolution, Unresolved):
        return describe_unresolved(resolution)
    forecast = await fetch_forecast(config, resolution.place, units, FORECAST_DAYS)
    return format_weather(resolution, forecast)


@function_tool
async def get_weather(
    ctx: RunContextWrapper[TurnContext], location: str, units: Units = "metric"
) -> str:
    """Get the current weather and a 3-day forecast for a place.

    Call this whenever the user asks about weather, temperature, rain, snow or wind somewhere,
    now or in the next three days; call it once per place. The answer names the place that was
    used. If several places share the name (e.g. Springfield), it answers for the most prominent
    one and lists the others: tell the user which one you used and, if they meant another, call
    again with the region or country added. If the region or country given matches none of the
    places with that name, no weather is returned and the candidates are listed: ask the user.
    Failures (unknown place, service down) come back as a short note to relay to the user.

    Args:
        location: The place, city first, then optionally its region and/or country after
            commas, e.g. "Tokyo", "Paris, France", "Springfield, Illinois", "Portland, OR, USA".
        units: "metric" (°C, km/h, mm) or "imperial" (°F, mph, inches). Use "imperial" when
            the user asks for Fahrenheit or uses imperial units themselves; otherwise "metric".
    """
    try:
        return await weather_report(ctx.context.tools, location, units)
    except ServiceError as exc:
        return tool_failed(ctx, str(exc))
    except Exception:
        # A bug must not turn into the SDK's generic "an error occurred": say what failed.
        logger.exception("get_weather failed unexpectedly")
        return tool_failed(
            ctx, "The weather lookup failed unexpectedly. Tell the user to try again later."
        )
