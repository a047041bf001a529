"""A fake Open-Meteo (geocoding + forecast) on 127.0.0.1, speaking the real response shapes.

One server answers both ``/v1/search`` (geocoding-api.open-meteo.com) and ``/v1/forecast``
(api.open-meteo.com), so its ``base_url`` serves as both hosts. Weather comes from each place's
``FakeWeather`` (metric) and is converted like the real API when ``temperature_unit``,
``wind_speed_unit`` or ``precipitation_unit`` ask for it. Invalid parameters get the real
API's ``400 {"error": true, "reason": ...}``.

Usage::

    async with FakeOpenMeteo() as fake:
        fake.forecast_failure = Failure.SERVER_ERROR
        ... fake.base_url ... fake.requests ...
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from tests.fakes._server import LoopbackServer


class Failure(enum.Enum):
    """How one API misbehaves."""

    NONE = "none"
    SERVER_ERROR = "server_error"
    """HTTP 500."""
    HANG = "hang"
    """No answer until ``hang_s`` passes or the server stops."""
    MALFORMED_JSON = "malformed_json"
    """HTTP 200, ``application/json``, body cut off mid-document."""
    WRONG_SHAPE = "wrong_shape"
    """HTTP 200 with valid JSON that is not the documented shape."""


@dataclass(frozen=True, slots=True)
class FakeDay:
    weather_code: int
    max_c: float
    min_c: float
    precipitation_probability: int | None


@dataclass(frozen=True, slots=True)
class FakeWeather:
    """Conditions in metric; the fake converts on request like the real API."""

    temperature_c: float
    apparent_c: float
    humidity: int
    precipitation_mm: float
    weather_code: int
    wind_kmh: float
    days: tuple[FakeDay, ...]


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
        if self.population is not None:
            result["population"] = self.population
        if self.admin1 is not None:
            result["admin1"] = self.admin1
        if self.admin2 is not None:
            result["admin2"] = self.admin2
        return result


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    path: str
    query: dict[str, str]


def _weather(
    now: tuple[float, float, int, float, int, float], days: Iterable[tuple[int, float, float, int]]
) -> FakeWeather:
    temperature, apparent, humidity, precipitation, code, wind = now
    return FakeWeather(
        temperature_c=temperature,
        apparent_c=apparent,
        humidity=humidity,
        precipitation_mm=precipitation,
        weather_code=code,
        wind_kmh=wind,
        days=tuple(FakeDay(c, hi, lo, p) for c, hi, lo, p in days),
    )


_MILD = _weather((15.0, 14.2, 70, 0.0, 1, 9.0), [(1, 18.0, 9.0, 5), (2, 17.5, 8.5, 10)])

DEFAULT_PLACES: tuple[FakePlace, ...] = (
    FakePlace(
        id=1850147,
        name="Tokyo",
        latitude=35.6895,
        longitude=139.69171,
        elevation=44.0,
        feature_code="PPLC",
        country_code="JP",
        country="Japan",
        admin1="Tokyo",
        timezone="Asia/Tokyo",
        population=8336599,
        weather=_weather(
            (18.4, 17.1, 62, 0.0, 2, 11.2),
            [(3, 21.3, 14.2, 10), (61, 19.8, 15.0, 80), (0, 23.0, 13.9, 5)],
        ),
    ),
    FakePlace(
        id=2988507,
        name="Paris",
        latitude=48.85341,
        longitude=2.3488,
        elevation=42.0,
        feature_code="PPLC",
        country_code="FR",
        country="France",
        admin1="Île-de-France",
        admin2="Paris",
        timezone="Europe/Paris",
        population=2138551,
        weather=_weather(
            (9.6, 7.2, 81, 0.4, 63, 17.3),
            [(63, 11.2, 6.1, 90), (3, 12.8, 5.0, 30), (45, 10.0, 3.2, 15)],
        ),
    ),
    FakePlace(
        id=4717560,
        name="Paris",
        latitude=33.66094,
        longitude=-95.55551,
        elevation=183.0,
        feature_code="PPLA2",
        country_code="US",
        country="United States",
        admin1="Texas",
        admin2="Lamar",
        timezone="America/Chicago",
        population=24782,
        weather=_MILD,
    ),
    FakePlace(
        id=4409896,
        name="Springfield",
        latitude=37.21533,
        longitude=-93.29824,
        elevation=396.0,
        feature_code="PPLA2",
        country_code="US",
        country="United States",
        admin1="Missouri",
        admin2="Greene",
        timezone="America/Chicago",
        population=169176,
        weather=_weather(
            (24.0, 25.1, 55, 0.0, 0, 14.0),
            [(0, 27.0, 15.0, 0), (95, 25.5, 17.0, 65), (80, 22.0, 14.0, 40)],
        ),
    ),
    FakePlace(
        id=4951788,
        name="Springfield",
        latitude=42.10148,
        longitude=-72.58981,
        elevation=21.0,
        feature_code="PPLA2",
        country_code="US",
        country="United States",
        admin1="Massachusetts",
        admin2="Hampden",
        timezone="America/New_York",
        population=155929,
        weather=_MILD,
    ),
    FakePlace(
        id=4250542,
        name="Springfield",
        latitude=39.80172,
        longitude=-89.64371,
        elevation=182.0,
        feature_code="PPLA",
        country_code="US",
        country="United States",
        admin1="Illinois",
        admin2="Sangamon",
        timezone="America/Chicago",
        population=116250,
        weather=_weather(
            (-3.5, -8.9, 74, 1.2, 73, 25.9),
            [(73, -1.0, -7.5, 85), (71, -2.4, -10.2, 60), (3, 1.5, -6.0, 20)],
        ),
    ),
    FakePlace(
        id=5754005,
        name="Springfield",
        latitude=44.04624,
        longitude=-123.02203,
        elevation=140.0,
        feature_code="PPL",
        country_code="US",
        country="United States",
        admin1="Oregon",
        admin2="Lane",
        timezone="America/Los_Angeles",
        population=59403,
        weather=_MILD,
    ),
    FakePlace(
        id=2147357,
        name="Springfield",
        latitude=-27.6534,
        longitude=152.91809,
        elevation=45.0,
        feature_code="PPL",
        country_code="AU",
        country="Australia",
        admin1="Queensland",
        timezone="Australia/Brisbane",
        population=8690,
        weather=_MILD,
    ),
    FakePlace(
        id=2180991,
        name="Springfield",
        latitude=-43.33333,
        longitude=171.93333,
        elevation=393.0,
        feature_code="PPL",
        country_code="NZ",
        country="New Zealand",
        admin1="Canterbury",
        timezone="Pacific/Auckland",
        weather=_MILD,
    ),
    FakePlace(
        id=2643743,
        name="London",
        latitude=51.50853,
        longitude=-0.12574,
        elevation=25.0,
        feature_code="PPLC",
        country_code="GB",
        country="United Kingdom",
        admin1="England",
        admin2="Greater London",
        timezone="Europe/London",
        population=8961989,
        weather=_MILD,
    ),
    FakePlace(
        id=3448439,
        name="São Paulo",
        latitude=-23.5475,
        longitude=-46.63611,
        elevation=769.0,
        feature_code="PPLA",
        country_code="BR",
        country="Brazil",
        admin1="São Paulo",
        timezone="America/Sao_Paulo",
        population=10021295,
        weather=_MILD,
    ),
)

CURRENT_VARIABLES = frozenset(
    {
        "temperature_2m",
        "relative_humidity_2m",
        "apparent_temperature",
        "precipitation",
        "weather_code",
        "wind_speed_10m",
    }
)
DAILY_VARIABLES = frozenset(
    {"weather_code", "temperature_2m_max", "temperature_2m_min", "precipitation_probability_max"}
)
TEMPERATURE_UNITS = {"celsius": "°C", "fahrenheit": "°F"}
WIND_UNITS = {
    "kmh": ("km/h", 1.0),
    "ms": ("m/s", 3.6),
    "mph": ("mp/h", 1.609344),
    "kn": ("kn", 1.852),
}
PRECIPITATION_UNITS = {"mm": ("mm", 1.0), "inch": ("inch", 25.4)}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


class _BadRequest(Exception):
    """Answered as the real API's HTTP 400 ``{"error": true, "reason": ...}``."""


class FakeOpenMeteo(LoopbackServer):
    """The fake server. Change ``places`` and the ``*_failure`` switches at any time."""

    def __init__(
        self,
        places: Iterable[FakePlace] = DEFAULT_PLACES,
        *,
        now: datetime | None = None,
        hang_s: float = 30.0,
    ) -> None:
        self.places: dict[int, FakePlace] = {place.id: place for place in places}
        """Keyed by GeoNames id, searched in order of (exact name first, population)."""
        self.geocoding_failure = Failure.NONE
        self.forecast_failure = Failure.NONE
        self.requests: list[ReceivedRequest] = []
        self.now = now
        """Fixed "now" for ``current.time`` and ``daily.time``; the real clock when ``None``."""
        self.hang_s = hang_s
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
                await asyncio.wait_for(self._release.wait(), self.hang_s)
            return None
        if failure is Failure.MALFORMED_JSON:
            return web.Response(
                text='{"results": [{"id": 1, "name": "Tok', content_type="application/json"
            )
        if failure is Failure.WRONG_SHAPE:
            return web.json_response(wrong_shape)
        return None

    def _record(self, request: web.Request) -> None:
        self.requests.append(ReceivedRequest(request.path, dict(request.query)))

    async def _search(self, request: web.Request) -> web.Response:
        self._record(request)
        failed = await self._misbehave(
            self.geocoding_failure, {"results": {"name": "Tokyo"}, "generationtime_ms": 0.4}
        )
        if failed is not None:
            return failed
        try:
            results = self._geocode(request.query)
        except _BadRequest as exc:
            return web.json_response({"error": True, "reason": str(exc)}, status=400)
        if not results:
            return web.json_response({"generationtime_ms": 0.5})
        return web.json_response({"results": results, "generationtime_ms": 1.2})

    async def _forecast(self, request: web.Request) -> web.Response:
        self._record(request)
        failed = await self._misbehave(
            self.forecast_failure, {"latitude": 35.7, "longitude": 139.6875, "current": "none"}
        )
        if failed is not None:
            return failed
        try:
            body = self._forecast_body(request.query)
        except _BadRequest as exc:
            return web.json_response({"error": True, "reason": str(exc)}, status=400)
        return web.json_response(body)

    # --- the APIs ------------------------------------------------------------------------------

    def _geocode(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        if "name" not in query:
            raise _BadRequest("Parameter 'name' is required")
        count_text = query.get("count", "10")
        try:
            count = int(count_text)
        except ValueError:
            raise _BadRequest(f"Parameter 'count' is not an integer: {count_text}") from None
        if not 1 <= count <= 100:
            raise _BadRequest("Parameter count must be between 1 and 100.")
        if query.get("format", "json") not in ("json", "protobuf"):
            raise _BadRequest("Parameter 'format' must be 'json' or 'protobuf'")
        wanted = _fold(query["name"])
        # As documented: <2 characters find nothing, 2 match exactly, 3+ match more loosely.
        if len(wanted) < 2:
            return []

        def matches(place: FakePlace) -> bool:
            name = _fold(place.name)
            return name == wanted if len(wanted) == 2 else name.startswith(wanted)

        found = [p for p in self.places.values() if matches(p)]
        found.sort(key=lambda p: (_fold(p.name) != wanted, -(p.population or 0)))
        return [p.geocoding_result() for p in found[:count]]

    def _now(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)

    def _place_at(self, latitude: float, longitude: float) -> FakePlace | None:
        for place in self.places.values():
            if abs(place.latitude - latitude) < 0.01 and abs(place.longitude - longitude) < 0.01:
                return place
        return None

    def _forecast_body(self, query: Mapping[str, str]) -> dict[str, Any]:
        latitude = _coordinate(query, "latitude", 90)
        longitude = _coordinate(query, "longitude", 180)
        current_vars = _variables(query, "current", CURRENT_VARIABLES, "CurrentVariable")
        daily_vars = _variables(query, "daily", DAILY_VARIABLES, "DailyVariable")
        temperature_unit = _choice(query, "temperature_unit", "celsius", TEMPERATURE_UNITS)
        wind_unit = _choice(query, "wind_speed_unit", "kmh", WIND_UNITS)
        precipitation_unit = _choice(query, "precipitation_unit", "mm", PRECIPITATION_UNITS)
        days_text = query.get("forecast_days", "7")
        if not days_text.isdigit() or not 0 <= int(days_text) <= 16:
            raise _BadRequest("Forecast days is invalid. Allowed range 0 to 16.")
        forecast_days = int(days_text)

        place = self._place_at(latitude, longitude)
        zone = _zone(query.get("timezone", "GMT"), place)
        local_now = self._now().astimezone(zone)
        offset = local_now.utcoffset() or timedelta()
        weather = place.weather if place is not None else _MILD

        temp_symbol = TEMPERATURE_UNITS[temperature_unit]
        wind_symbol, wind_divisor = WIND_UNITS[wind_unit]
        precip_symbol, precip_divisor = PRECIPITATION_UNITS[precipitation_unit]

        def temperature(celsius: float) -> float:
            return round(celsius * 9 / 5 + 32 if temperature_unit == "fahrenheit" else celsius, 1)

        current_values: dict[str, tuple[str, Any]] = {
            "temperature_2m": (temp_symbol, temperature(weather.temperature_c)),
            "relative_humidity_2m": ("%", weather.humidity),
            "apparent_temperature": (temp_symbol, temperature(weather.apparent_c)),
            "precipitation": (
                precip_symbol,
                round(weather.precipitation_mm / precip_divisor, 3 if precip_divisor > 1 else 2),
            ),
            "weather_code": ("wmo code", weather.weather_code),
            "wind_speed_10m": (wind_symbol, round(weather.wind_kmh / wind_divisor, 1)),
        }
        days = [weather.days[i % len(weather.days)] for i in range(forecast_days)]
        daily_values: dict[str, tuple[str, list[Any]]] = {
            "weather_code": ("wmo code", [d.weather_code for d in days]),
            "temperature_2m_max": (temp_symbol, [temperature(d.max_c) for d in days]),
            "temperature_2m_min": (temp_symbol, [temperature(d.min_c) for d in days]),
            "precipitation_probability_max": ("%", [d.precipitation_probability for d in days]),
        }

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
                v: current_values[v][0] for v in current_vars
            }
            body["current"] = {"time": quarter.strftime("%Y-%m-%dT%H:%M"), "interval": 900} | {
                v: current_values[v][1] for v in current_vars
            }
        if daily_vars:
            today = local_now.date()
            body["daily_units"] = {"time": "iso8601"} | {v: daily_values[v][0] for v in daily_vars}
            body["daily"] = {
                "time": [(today + timedelta(days=i)).isoformat() for i in range(forecast_days)]
            } | {v: daily_values[v][1] for v in daily_vars}
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


def _choice(query: Mapping[str, str], key: str, default: str, allowed: Mapping[str, object]) -> str:
    value = query.get(key, default)
    if value not in allowed:
        raise _BadRequest(
            f"Cannot initialize {key} from invalid String value {value} for key {key}"
        )
    return value


def _zone(name: str, place: FakePlace | None) -> ZoneInfo:
    if name == "auto":
        return ZoneInfo(place.timezone if place is not None else "GMT")
    if name.upper() in ("GMT", "UTC"):
        return ZoneInfo("GMT")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _BadRequest(f"Invalid timezone: {name}") from None


def with_places(*places: FakePlace) -> tuple[FakePlace, ...]:
    """``DEFAULT_PLACES`` plus ``places`` (e.g. a broken one for a failure test)."""
    return (*DEFAULT_PLACES, *places)


__all__ = [
    "DEFAULT_PLACES",
    "Failure",
    "FakeDay",
    "FakeOpenMeteo",
    "FakePlace",
    "FakeWeather",
    "ReceivedRequest",
    "with_places",
]
