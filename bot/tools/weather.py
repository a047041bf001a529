"""``get_weather``: current conditions and a 3-day forecast from Open-Meteo.

Also home of the Open-Meteo plumbing (one JSON GET, geocoding, choosing among places) that
``clock.py`` reuses. Parsing, choosing and formatting are pure functions; only
``fetch_json``, ``geocode`` and the tool itself do I/O.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import aiohttp
from agents import RunContextWrapper, function_tool

from bot.context import ToolConfig, TurnContext

logger = logging.getLogger(__name__)

Units = Literal["metric", "imperial"]

GEOCODING_COUNT = 20
"""Results asked of the geocoder: enough to find "Springfield, Vermont" among many Springfields."""
MAX_ALTERNATIVES = 5
FORECAST_DAYS = 3
CURRENT_VARIABLES = (
    "temperature_2m",
    "relative_humidity_2m",
    "apparent_temperature",
    "precipitation",
    "weather_code",
    "wind_speed_10m",
)
DAILY_VARIABLES = (
    "weather_code",
    "temperature_2m_max",
    "temperature_2m_min",
    "precipitation_probability_max",
)
IMPERIAL_PARAMS = {
    "temperature_unit": "fahrenheit",
    "wind_speed_unit": "mph",
    "precipitation_unit": "inch",
}

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

US_STATES: Mapping[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "Washington, D.C.",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
}

# Country names people type that are neither the geocoder's English name nor the ISO code.
COUNTRY_ALIASES: Mapping[str, str] = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "usa": "US",
    "america": "US",
    "united states of america": "US",
    "uae": "AE",
}


# --- Errors ------------------------------------------------------------------------------------


class ServiceError(Exception):
    """An Open-Meteo call failed; ``str(error)`` is a short sentence fit for the model."""


class MalformedResponse(ValueError):
    """A response parsed as JSON but did not have the shape Open-Meteo documents."""


# --- Values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocationQuery:
    """What the user typed, split: ``"Springfield, Illinois"`` -> name + ``("Illinois",)``."""

    name: str
    qualifiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Place:
    """One geocoding result (the fields we use)."""

    name: str
    latitude: float
    longitude: float
    country: str | None = None
    country_code: str | None = None
    admin1: str | None = None
    admin2: str | None = None
    timezone: str | None = None
    population: int | None = None

    @property
    def label(self) -> str:
        """``"Springfield, Illinois, United States"``; repeats (``Tokyo, Tokyo``) are dropped."""
        parts = [self.name]
        for part in (self.admin1, self.country or self.country_code):
            if part and part not in parts:
                parts.append(part)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The place we answer for, plus other places with the same name (to mention)."""

    place: Place
    others: tuple[Place, ...] = ()


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Nothing fits. ``candidates`` are places with that name the qualifier ruled out."""

    query: LocationQuery
    candidates: tuple[Place, ...] = ()


@dataclass(frozen=True, slots=True)
class Reading:
    value: float | None
    unit: str


@dataclass(frozen=True, slots=True)
class Current:
    time: str
    temperature: Reading
    apparent_temperature: Reading
    humidity: Reading
    precipitation: Reading
    wind_speed: Reading
    weather_code: int | None


@dataclass(frozen=True, slots=True)
class Day:
    date: str
    weather_code: int | None
    high: Reading
    low: Reading
    precipitation_probability: Reading


@dataclass(frozen=True, slots=True)
class Forecast:
    timezone: str
    timezone_abbreviation: str
    current: Current
    days: tuple[Day, ...]


# --- Pure functions ----------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form for comparing place names."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = "".join(c if c.isalnum() else " " for c in stripped.casefold())
    return " ".join(cleaned.split())


def split_location(location: str) -> LocationQuery:
    """``"Portland, OR, USA"`` -> ``LocationQuery("Portland", ("OR", "USA"))``.

    The geocoder only matches names, so anything after the first comma is kept aside to choose
    among its results.
    """
    name, *rest = (part.strip() for part in location.split(","))
    return LocationQuery(name=name, qualifiers=tuple(part for part in rest if part))


def geocoding_params(name: str) -> dict[str, str]:
    return {"name": name, "count": str(GEOCODING_COUNT), "language": "en", "format": "json"}


def forecast_params(place: Place, units: Units) -> dict[str, str]:
    params = {
        "latitude": str(place.latitude),
        "longitude": str(place.longitude),
        "current": ",".join(CURRENT_VARIABLES),
        "daily": ",".join(DAILY_VARIABLES),
        "timezone": "auto",
        "forecast_days": str(FORECAST_DAYS),
    }
    if units == "imperial":
        params.update(IMPERIAL_PARAMS)
    return params


def _optional_str(item: Mapping[str, object], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) and value else None


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedResponse(f"{what} is not a number: {value!r}")
    return float(value)


def _optional_number(value: object, what: str) -> float | None:
    return None if value is None else _number(value, what)


def parse_places(payload: object) -> list[Place]:
    """Geocoding JSON -> places. No ``results`` key is how the API says "nothing found"."""
    if not isinstance(payload, dict):
        raise MalformedResponse("geocoding response is not an object")
    results = payload.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise MalformedResponse("geocoding 'results' is not a list")
    places: list[Place] = []
    for item in results:
        if not isinstance(item, dict):
            raise MalformedResponse("geocoding result is not an object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise MalformedResponse("geocoding result has no name")
        population = item.get("population")
        places.append(
            Place(
                name=name,
                latitude=_number(item.get("latitude"), "latitude"),
                longitude=_number(item.get("longitude"), "longitude"),
                country=_optional_str(item, "country"),
                country_code=_optional_str(item, "country_code"),
                admin1=_optional_str(item, "admin1"),
                admin2=_optional_str(item, "admin2"),
                timezone=_optional_str(item, "timezone"),
                population=population
                if isinstance(population, int) and not isinstance(population, bool)
                else None,
            )
        )
    return places


def qualifier_matches(qualifier: str, place: Place) -> bool:
    """Does ``"Illinois"`` / ``"IL"`` / ``"US"`` / ``"UK"`` / ``"France"`` describe ``place``?"""
    wanted = normalize(qualifier)
    if not wanted:
        return True
    fields = (place.country, place.country_code, place.admin1, place.admin2)
    if any(field and normalize(field) == wanted for field in fields):
        return True
    code = (place.country_code or "").upper()
    if COUNTRY_ALIASES.get(wanted) == code:
        return True
    state = US_STATES.get(qualifier.strip().upper())
    return code == "US" and state is not None and normalize(state) == normalize(place.admin1 or "")


def _same_spot(a: Place, b: Place) -> bool:
    return (a.admin1, a.country_code) == (b.admin1, b.country_code)


def choose_place(query: LocationQuery, places: Sequence[Place]) -> Resolved | Unresolved:
    """Pick the place to answer for.

    The geocoder ranks results by prominence, so the first one that fits every qualifier wins.
    Other results with the same name somewhere else are kept as ``others`` so the answer can say
    which one was picked. If qualifiers rule everything out we do not guess: the caller gets the
    candidates to offer instead.
    """
    fitting = [p for p in places if all(qualifier_matches(q, p) for q in query.qualifiers)]
    if not fitting:
        wanted = normalize(query.name)
        namesakes = [p for p in places if normalize(p.name) == wanted] or list(places)
        return Unresolved(query=query, candidates=tuple(namesakes[:MAX_ALTERNATIVES]))
    chosen = fitting[0]
    others: list[Place] = []
    for place in fitting[1:]:
        if normalize(place.name) != normalize(chosen.name):
            continue
        if _same_spot(place, chosen) or any(_same_spot(place, o) for o in others):
            continue
        others.append(place)
        if len(others) == MAX_ALTERNATIVES:
            break
    return Resolved(place=chosen, others=tuple(others))


def describe_unresolved(unresolved: Unresolved) -> str:
    """The answer when no place fits: what was looked for, and what the model should do."""
    query = unresolved.query
    if not unresolved.candidates:
        return (
            f"No place called {query.name!r} was found. Ask the user to check the spelling or "
            "to name a nearby larger town, optionally with its country (e.g. 'Paris, France')."
        )
    where = ", ".join(query.qualifiers)
    options = "; ".join(p.label for p in unresolved.candidates)
    return (
        f"No place called {query.name!r} matches {where!r}. Places with that name: {options}. "
        "Ask the user which one they mean, then call again with e.g. "
        f"{unresolved.candidates[0].label!r}."
    )


def describe_weather_code(code: int | None) -> str:
    if code is None:
        return "conditions unknown"
    return WMO_DESCRIPTIONS.get(code, f"unknown conditions (WMO code {code})")


def _weather_code(value: object) -> int | None:
    number = _optional_number(value, "weather_code")
    return None if number is None else int(number)


def _units(payload: Mapping[str, object], key: str) -> Mapping[str, object]:
    units = payload.get(key)
    if not isinstance(units, dict):
        raise MalformedResponse(f"forecast has no {key}")
    return units


def _unit(units: Mapping[str, object], variable: str) -> str:
    unit = units.get(variable)
    if not isinstance(unit, str):
        raise MalformedResponse(f"no unit for {variable}")
    return unit


def parse_forecast(payload: object) -> Forecast:
    """Forecast JSON (``current`` + ``daily`` with their ``*_units``) -> ``Forecast``."""
    if not isinstance(payload, dict):
        raise MalformedResponse("forecast response is not an object")
    current = payload.get("current")
    daily = payload.get("daily")
    if not isinstance(current, dict) or not isinstance(daily, dict):
        raise MalformedResponse("forecast has no current or daily block")
    current_units = _units(payload, "current_units")
    daily_units = _units(payload, "daily_units")

    def now(variable: str) -> Reading:
        if variable not in current:
            raise MalformedResponse(f"current has no {variable}")
        value = _optional_number(current[variable], variable)
        return Reading(value, _unit(current_units, variable))

    columns: dict[str, list[object]] = {}
    for variable in ("time", *DAILY_VARIABLES):
        column = daily.get(variable)
        if not isinstance(column, list):
            raise MalformedResponse(f"daily has no {variable}")
        columns[variable] = column
    if len({len(column) for column in columns.values()}) != 1:
        raise MalformedResponse("daily columns differ in length")

    def day(i: int) -> Day:
        day_date = columns["time"][i]
        if not isinstance(day_date, str):
            raise MalformedResponse("daily time is not a string")

        def reading(variable: str) -> Reading:
            value = _optional_number(columns[variable][i], variable)
            return Reading(value, _unit(daily_units, variable))

        return Day(
            date=day_date,
            weather_code=_weather_code(columns["weather_code"][i]),
            high=reading("temperature_2m_max"),
            low=reading("temperature_2m_min"),
            precipitation_probability=reading("precipitation_probability_max"),
        )

    time = current.get("time")
    if not isinstance(time, str):
        raise MalformedResponse("current has no time")
    timezone = payload.get("timezone")
    abbreviation = payload.get("timezone_abbreviation")
    return Forecast(
        timezone=timezone if isinstance(timezone, str) else "",
        timezone_abbreviation=abbreviation if isinstance(abbreviation, str) else "",
        current=Current(
            time=time,
            temperature=now("temperature_2m"),
            apparent_temperature=now("apparent_temperature"),
            humidity=now("relative_humidity_2m"),
            precipitation=now("precipitation"),
            wind_speed=now("wind_speed_10m"),
            weather_code=_weather_code(current.get("weather_code")),
        ),
        days=tuple(day(i) for i in range(len(columns["time"]))),
    )


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


def error_reason(body: bytes) -> str | None:
    """Open-Meteo's ``{"error": true, "reason": "..."}``, if that is what ``body`` is."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("reason"), str):
        return str(payload["reason"])
    return None


# --- I/O ---------------------------------------------------------------------------------------


async def fetch_json(
    config: ToolConfig, base_url: str, path: str, params: Mapping[str, str], service: str
) -> object:
    """GET ``{base_url}{path}`` and decode JSON; every failure becomes a ``ServiceError``."""
    url = base_url.rstrip("/") + path
    timeout = aiohttp.ClientTimeout(total=config.http_timeout_s)
    try:
        async with config.http.get(url, params=params, timeout=timeout) as response:
            status = response.status
            body = await response.read()
    except TimeoutError as exc:
        logger.warning("%s timed out after %gs: %s", service, config.http_timeout_s, url)
        raise ServiceError(
            f"The {service} did not answer within {config.http_timeout_s:g} s. "
            "Tell the user it could not be reached right now and to try again later."
        ) from exc
    except aiohttp.ClientError as exc:
        logger.warning("%s request failed: %s: %r", service, url, exc)
        raise ServiceError(
            f"The {service} could not be reached. Tell the user to try again later."
        ) from exc
    if status != 200:
        reason = error_reason(body)
        logger.warning("%s answered HTTP %d for %s: %s", service, status, url, reason)
        if 400 <= status < 500 and reason:
            raise ServiceError(f"The {service} rejected the request: {reason}")
        raise ServiceError(
            f"The {service} is not working right now (HTTP {status}). "
            "Tell the user to try again later."
        )
    try:
        return json.loads(body)
    except ValueError as exc:
        logger.warning("%s sent malformed JSON for %s: %s", service, url, exc)
        raise ServiceError(f"The {service} sent an unreadable answer. Try again later.") from exc


async def geocode(config: ToolConfig, location: str) -> Resolved | Unresolved:
    """Find ``location`` ("Name" or "Name, Region, Country") with the geocoding API."""
    query = split_location(location)
    payload = await fetch_json(
        config, config.geocoding_url, "/v1/search", geocoding_params(query.name), "place search"
    )
    try:
        places = parse_places(payload)
    except MalformedResponse as exc:
        logger.warning("place search sent an unexpected shape: %s", exc)
        raise ServiceError("The place search sent an unreadable answer. Try again later.") from exc
    return choose_place(query, places)


async def weather_report(config: ToolConfig, location: str, units: Units) -> str:
    if not location.strip() or not split_location(location).name:
        return "No location was given. Ask the user which place they want the weather for."
    try:
        resolution = await geocode(config, location)
        if isinstance(resolution, Unresolved):
            return describe_unresolved(resolution)
        payload = await fetch_json(
            config,
            config.open_meteo_url,
            "/v1/forecast",
            forecast_params(resolution.place, units),
            "weather service",
        )
        try:
            forecast = parse_forecast(payload)
        except MalformedResponse as exc:
            logger.warning("weather service sent an unexpected shape: %s", exc)
            raise ServiceError(
                "The weather service sent an unreadable answer. Try again later."
            ) from exc
    except ServiceError as exc:
        return str(exc)
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
    except Exception:
        # A bug must not turn into the SDK's generic "an error occurred": say what failed.
        logger.exception("get_weather failed unexpectedly")
        return "The weather lookup failed unexpectedly. Tell the user to try again later."
