"""Which place the user means: what they typed, split, matched against the geocoder's results.

The geocoder matches names only ("Springfield"); the region or country typed after a comma
("Springfield, IL") is matched here, and same-named places elsewhere are kept so that the tools
can say which one they answered for. ``geocode`` is the one function that does I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.context import ToolConfig
from bot.tools.open_meteo import Place, search_places

MAX_ALTERNATIVES = 5
"""Same-named places mentioned besides the one chosen, or offered when none fits."""

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


# --- Values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocationQuery:
    """What the user typed, split: ``"Springfield, Illinois"`` -> name + ``("Illinois",)``."""

    name: str
    qualifiers: tuple[str, ...] = ()


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


# --- Choosing ----------------------------------------------------------------------------------


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


async def geocode(config: ToolConfig, location: str) -> Resolved | Unresolved:
    """Find ``location`` ("Name" or "Name, Region, Country") with the geocoding API."""
    query = split_location(location)
    return choose_place(query, await search_places(config, query.name))
