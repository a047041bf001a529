"""The Open-Meteo client: the two requests the tools make, typed, and the one error they raise.

``search_places`` asks the geocoding API for places by name; ``fetch_forecast`` asks the forecast
API for current conditions and daily values at a place. Building requests and parsing responses
are pure functions; every failure (network, timeout, HTTP status, a body that is not the
documented shape) becomes a ``ServiceError`` whose text the tools hand to the model as it is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

import aiohttp

from bot.context import ToolConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")
Units = Literal["metric", "imperial"]

GEOCODING_COUNT = 20
"""Results asked of the geocoder: enough to find "Springfield, Vermont" among many Springfields."""
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


# --- Errors ------------------------------------------------------------------------------------


class ServiceError(Exception):
    """An Open-Meteo call failed; ``str(error)`` is a short sentence fit for the model."""


class MalformedResponse(ValueError):
    """A response parsed as JSON but did not have the shape Open-Meteo documents."""


# --- Values ------------------------------------------------------------------------------------


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


# --- Requests ----------------------------------------------------------------------------------


def geocoding_params(name: str) -> dict[str, str]:
    return {"name": name, "count": str(GEOCODING_COUNT), "language": "en", "format": "json"}


def forecast_params(place: Place, units: Units, days: int) -> dict[str, str]:
    params = {
        "latitude": str(place.latitude),
        "longitude": str(place.longitude),
        "current": ",".join(CURRENT_VARIABLES),
        "daily": ",".join(DAILY_VARIABLES),
        "timezone": "auto",
        "forecast_days": str(days),
    }
    if units == "imperial":
        params.update(IMPERIAL_PARAMS)
    return params


# --- Responses ---------------------------------------------------------------------------------


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


async def search_places(config: ToolConfig, name: str) -> list[Place]:
    """The geocoder's places called ``name`` (matched on the name only), most prominent first."""
    params = geocoding_params(name)
    return await _get(
        config, config.geocoding_url, "/v1/search", params, parse_places, "place search"
    )


async def fetch_forecast(config: ToolConfig, place: Place, units: Units, days: int) -> Forecast:
    """Conditions now and ``days`` days of daily values at ``place``, in its local time."""
    params = forecast_params(place, units, days)
    return await _get(
        config, config.open_meteo_url, "/v1/forecast", params, parse_forecast, "weather service"
    )


async def _get(
    config: ToolConfig,
    base_url: str,
    path: str,
    params: Mapping[str, str],
    parse: Callable[[object], T],
    service: str,
) -> T:
    """GET ``{base_url}{path}``, decode and parse; every failure becomes a ``ServiceError``.

    ``service`` names the API in the error: it is what the model reads and relays.
    """
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
    unreadable = f"The {service} sent an unreadable answer. Try again later."
    try:
        payload = json.loads(body)
    except ValueError as exc:
        logger.warning("%s sent malformed JSON for %s: %s", service, url, exc)
        raise ServiceError(unreadable) from exc
    try:
        return parse(payload)
    except MalformedResponse as exc:
        logger.warning("%s sent an unexpected shape: %s", service, exc)
        raise ServiceError(unreadable) from exc
