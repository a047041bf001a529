"""A fake Open-Meteo (geocoding + forecast) on 127.0.0.1, speaking the real response shapes.

One server answers both ``/v1/search`` (geocoding-api.open-meteo.com) and ``/v1/forecast``
(api.open-meteo.com), so its ``base_url`` serves as both hosts. Places and weather are data in
``fixtures/``: ``open_meteo_places.json`` is a geocoding answer listing every place the fake
knows; ``open_meteo_weather.json`` holds conditions in metric under the API's variable names, by
GeoNames id (places it does not list, and unknown coordinates, get its ``default``). Units are
converted like the real API's when ``temperature_unit``, ``wind_speed_unit`` or
``precipitation_unit`` ask for it.

It models the requests the bot makes, and answers anything else with the real API's
``400 {"error": true, "reason": ...}``: a variable or unit it has no data for as the real API
reports an unknown one, a time zone other than ``auto`` or a format other than JSON as not
modelled. A test whose requests stray then fails on that reason, not on invented data.

Usage::

    async with FakeOpenMeteo() as fake:
        fake.forecast_failure = Failure.SERVER_ERROR
        ... fake.base_url ... fake.requests ...
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes._server import LoopbackServer

FIXTURES = Path(__file__).parent / "fixtures"
HANG_S = 30.0
"""How long a ``Failure.HANG`` request waits at most if the server is not stopped first."""


class Failure(enum.Enum):
    """How one API misbehaves."""

    NONE = "none"
    SERVER_ERROR = "server_error"
    """HTTP 500."""
    HANG = "hang"
    """No answer until ``HANG_S`` passes or the server stops."""
    MALFORMED_JSON = "malformed_json"
    """HTTP 200, ``application/json``, body cut off mid-document."""
    WRONG_SHAPE = "wrong_shape"
    """HTTP 200 with valid JSON that is not the documented shape."""


@dataclass(frozen=True, slots=True)
class FakeWeather:
    """Conditions at a place in metric units, keyed by the API's variable names."""

    current: Mapping[str, float | None]
    daily: Mapping[str, Sequence[float | None]]
    """Columns of daily values, repeated for as many days as are asked for."""


@dataclass(frozen=True, slots=True)
class FakePlace:
    """One geocoding result (GeoNames fields as Open-Meteo returns them) and its weather."""

    id: int
    name: str
    latitude: float
    longitude: float
    elevation: float
    feature_code: str
    country_code: str
    country: str
    timezone: str
    weather: FakeWeather
    admin1: str | None = None
    admin2: str | None = None
    population: int | None = None

    def geocoding_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "elevation": self.elevation,
            "feature_code": self.feature_code,
            "country_code": self.country_code,
            "timezone": self.timezone,
            "country": self.country,
        }
        # The real API leaves out keys it has no value for rather than sending null.
        optional = {"population": self.population, "admin1": self.admin1, "admin2": self.admin2}
        result.update({key: value for key, value in optional.items() if value is not None})
        return result


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    path: str
    query: dict[str, str]


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _load() -> tuple[FakeWeather, tuple[FakePlace, ...]]:
    """The default weather and the places with theirs, each file checked against the other."""
    weather = _fixture("open_meteo_weather.json")
    default = weather.pop("default")
    places: list[FakePlace] = []
    for result in _fixture("open_meteo_places.json")["results"]:
        entry = weather.pop(str(result["id"]), default)
        # Weather is keyed by id and named for the reader: a slip in either would otherwise
        # quietly give a place the default weather, or another place's.
        if entry is not default and entry["name"] != result["name"]:
            raise ValueError(f"weather for {result['id']} is named {entry['name']!r}")
        places.append(FakePlace(**result, weather=FakeWeather(entry["current"], entry["daily"])))
    if weather:
        raise ValueError(f"weather for ids the fake has no place for: {sorted(weather)}")
    return FakeWeather(default["current"], default["daily"]), tuple(places)


DEFAULT_WEATHER, DEFAULT_PLACES = _load()

# Each unit a request may ask for: (the symbol the API writes, conversion from metric, digits).
Conversion = tuple[str, Callable[[float], float], int]
UNITS: Mapping[str, Mapping[str, Conversion]] = {
    "temperature_unit": {
        "celsius": ("°C", lambda c: c, 1),
        "fahrenheit": ("°F", lambda c: c * 9 / 5 + 32, 1),
    },
    "wind_speed_unit": {
        "kmh": ("km/h", lambda kmh: kmh, 1),
        "mph": ("mp/h", lambda kmh: kmh / 1.609344, 1),
    },
    "precipitation_unit": {
        "mm": ("mm", lambda mm: mm, 2),
        "inch": ("inch", lambda mm: mm / 25.4, 3),
    },
}
UNIT_DEFAULTS = {
    "temperature_unit": "celsius",
    "wind_speed_unit": "kmh",
    "precipitation_unit": "mm",
}
# What each variable the fake knows measures: a unit parameter above, or a fixed unit.
MEASURES: Mapping[str, str] = {
    "temperature_2m": "temperature_unit",
    "apparent_temperature": "temperature_unit",
    "temperature_2m_max": "temperature_unit",
    "temperature_2m_min": "temperature_unit",
    "wind_speed_10m": "wind_speed_unit",
    "precipitation": "precipitation_unit",
    "relative_humidity_2m": "%",
    "precipitation_probability_max": "%",
    "weather_code": "wmo code",
}
CURRENT_VARIABLES = frozenset(DEFAULT_WEATHER.current)
DAILY_VARIABLES = frozenset(DEFAULT_WEATHER.daily)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


class _BadRequest(Exception):
    """Answered as the real API's HTTP 400 ``{"error": true, "reason": ...}``."""


class FakeOpenMeteo(LoopbackServer):
    """The fake server. Set the ``*_failure`` switches at any time."""

    def __init__(
        self, places: Iterable[FakePlace] = DEFAULT_PLACES, *, now: datetime | None = None
    ) -> None:
        self.places = tuple(places)
        """Searched in order of (exact name first, population)."""
        self.geocoding_failure = Failure.NONE
        self.forecast_failure = Failure.NONE
        self.requests: list[ReceivedRequest] = []
        self.now = now
        """Fixed "now" for ``current.time`` and ``daily.time``; the real clock when ``None``."""
        self._release = asyncio.Event()
        super().__init__()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: both APIs' host (the tools append ``/v1/...``)."""
        return self.host_url

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/search", self._search)
        app.router.add_get("/v1/forecast", self._forecast)
        return app

    async def _on_started(self) -> None:
        self._release.clear()

    async def _on_stopping(self) -> None:
        self._release.set()  # let hanging handlers finish so shutdown is quick

    # --- assertions helpers ----------------------------------------------------------------------

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.path == path]

    # --- handlers ------------------------------------------------------------------------------

    async def _misbehave(self, failure: Failure, wrong_shape: object) -> web.Response | None:
        if failure is Failure.SERVER_ERROR:
            return web.json_response({"error": True, "reason": "Internal server error"}, status=500)
        if failure is Failure.HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), HANG_S)
            return None
        if failure is Failure.MALFORMED_JSON:
            return web.Response(
                text='{"results": [{"id": 1, "name": "Tok', content_type="application/json"
            )
        if failure is Failure.WRONG_SHAPE:
            return web.json_response(wrong_shape)
        return None

    async def _answer(
        self,
        request: web.Request,
        failure: Failure,
        wrong_shape: object,
        body: Callable[[Mapping[str, str]], dict[str, Any]],
    ) -> web.Response:
        self.requests.append(ReceivedRequest(request.path, dict(request.query)))
        failed = await self._misbehave(failure, wrong_shape)
        if failed is not None:
            return failed
        try:
            return web.json_response(body(request.query))
        except _BadRequest as exc:
            return web.json_response({"error": True, "reason": str(exc)}, status=400)

    async def _search(self, request: web.Request) -> web.Response:
        wrong_shape = {"results": {"name": "Tokyo"}, "generationtime_ms": 0.4}
        return await self._answer(request, self.geocoding_failure, wrong_shape, self._geocode)

    async def _forecast(self, request: web.Request) -> web.Response:
        wrong_shape = {"latitude": 35.7, "longitude": 139.6875, "current": "none"}
        return await self._answer(request, self.forecast_failure, wrong_shape, self._forecast_body)

    # --- the APIs ------------------------------------------------------------------------------

    def _geocode(self, query: Mapping[str, str]) -> dict[str, Any]:
        if "name" not in query:
            raise _BadRequest("Parameter 'name' is required")
        count_text = query.get("count", "10")
        if not count_text.isdigit() or not 1 <= int(count_text) <= 100:
            raise _BadRequest("Parameter count must be between 1 and 100.")
        if query.get("format", "json") != "json":
            raise _BadRequest(f"the fake Open-Meteo does not model format={query['format']}")
        wanted = _fold(query["name"])

        def matches(place: FakePlace) -> bool:
            # As documented: <2 characters find nothing, 2 match exactly, 3+ match more loosely.
            name = _fold(place.name)
            if len(wanted) < 3:
                return len(wanted) == 2 and name == wanted
            return name.startswith(wanted)

        found = [p for p in self.places if matches(p)]
        found.sort(key=lambda p: (_fold(p.name) != wanted, -(p.population or 0)))
        if not found:
            # "Nothing found" is the absence of the key, not an empty list.
            return {"generationtime_ms": 0.5}
        results = [p.geocoding_result() for p in found[: int(count_text)]]
        return {"results": results, "generationtime_ms": 1.2}

    def _now(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)

    def _place_at(self, latitude: float, longitude: float) -> FakePlace | None:
        for place in self.places:
            if abs(place.latitude - latitude) < 0.01 and abs(place.longitude - longitude) < 0.01:
                return place
        return None

    def _forecast_body(self, query: Mapping[str, str]) -> dict[str, Any]:
        latitude = _coordinate(query, "latitude", 90)
        longitude = _coordinate(query, "longitude", 180)
        current_vars = _variables(query, "current", CURRENT_VARIABLES, "CurrentVariable")
        daily_vars = _variables(query, "daily", DAILY_VARIABLES, "DailyVariable")
        units = {key: _unit(query, key) for key in UNITS}
        days_text = query.get("forecast_days", "7")
        if not days_text.isdigit() or not 0 <= int(days_text) <= 16:
            raise _BadRequest("Forecast days is invalid. Allowed range 0 to 16.")
        forecast_days = int(days_text)
        if query.get("timezone") != "auto":
            raise _BadRequest(
                f"the fake Open-Meteo does not model timezone={query.get('timezone')}"
            )

        place = self._place_at(latitude, longitude)
        weather = place.weather if place is not None else DEFAULT_WEATHER
        zone = ZoneInfo(place.timezone if place is not None else "GMT")
        local_now = self._now().astimezone(zone)
        offset = local_now.utcoffset() or timedelta()

        def unit(variable: str) -> str:
            measure = MEASURES[variable]
            return units[measure][0] if measure in units else measure

        def value(variable: str, metric: float | None) -> float | None:
            measure = MEASURES[variable]
            if metric is None or measure not in units:
                return metric
            _, to_unit, digits = units[measure]
            return round(to_unit(metric), digits)

        body: dict[str, Any] = {
            "latitude": round(latitude, 4),
            "longitude": round(longitude, 4),
            "generationtime_ms": 0.07,
            "utc_offset_seconds": int(offset.total_seconds()),
            "timezone": str(zone),
            "timezone_abbreviation": local_now.tzname() or "GMT",
            "elevation": place.elevation if place is not None else 0.0,
        }
        if current_vars:
            quarter = local_now.replace(minute=local_now.minute // 15 * 15, second=0, microsecond=0)
            body["current_units"] = {"time": "iso8601", "interval": "seconds"} | {
                v: unit(v) for v in current_vars
            }
            body["current"] = {"time": quarter.strftime("%Y-%m-%dT%H:%M"), "interval": 900} | {
                v: value(v, weather.current[v]) for v in current_vars
            }
        if daily_vars:
            today = local_now.date()
            days = range(forecast_days)
            body["daily_units"] = {"time": "iso8601"} | {v: unit(v) for v in daily_vars}
            body["daily"] = {"time": [(today + timedelta(days=i)).isoformat() for i in days]} | {
                v: [value(v, weather.daily[v][i % len(weather.daily[v])]) for i in days]
                for v in daily_vars
            }
        return body


def _coordinate(query: Mapping[str, str], key: str, limit: int) -> float:
    text = query.get(key)
    if text is None:
        raise _BadRequest(f"Parameter '{key}' is required")
    try:
        value = float(text)
    except ValueError:
        raise _BadRequest(f"Cannot initialize Float from invalid String value {text}") from None
    if not -limit <= value <= limit:
        raise _BadRequest(
            f"{key.capitalize()} must be in range of -{limit} to {limit}°. Given: {value}."
        )
    return value


def _variables(query: Mapping[str, str], key: str, known: frozenset[str], kind: str) -> list[str]:
    text = query.get(key, "")
    names = [name for name in text.split(",") if name]
    for name in names:
        if name not in known:
            raise _BadRequest(
                f"Cannot initialize {kind} from invalid String value {name} for key {key}"
            )
    return names


def _unit(query: Mapping[str, str], key: str) -> Conversion:
    value = query.get(key, UNIT_DEFAULTS[key])
    if value not in UNITS[key]:
        raise _BadRequest(
            f"Cannot initialize {key} from invalid String value {value} for key {key}"
        )
    return UNITS[key][value]


def with_places(*places: FakePlace) -> tuple[FakePlace, ...]:
    """``DEFAULT_PLACES`` plus ``places`` (e.g. a broken one for a failure test)."""
    return (*DEFAULT_PLACES, *places)


__all__ = [
    "DEFAULT_PLACES",
    "Failure",
    "FakeOpenMeteo",
    "FakePlace",
    "ReceivedRequest",
    "with_places",
]
