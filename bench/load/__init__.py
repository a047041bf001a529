"""Load benchmarks: the bot through its real Slack and Discord adapters against the fakes.

One bench, several scenarios:

    python -m bench.load --scenario NAME [--model-client litellm|openrouter|both] [options]
    python -m bench.load --scenario NAME --help        # the scenario's own options

Two processes, so that every figure of the bot is the bot's alone:

- the bot process (``python -m bench.load``, ``host``): the bot as ``python -m bot`` runs it,
  the real core (``open_services`` + ``build_core``, a SQLite file in a temporary directory,
  LOG_LEVEL=WARNING) with the real SlackAdapter (HTTP mode) and/or DiscordAdapter on one event
  loop. It imports no fake. Over each measured block it takes its own CPU
  (``time.process_time()``: every thread of the process, so aiosqlite's worker and
  ``to_thread`` work count, the world's never does), RSS and peak RSS, event-loop stalls (a
  10 ms ticker, left out of blocks whose figure is the CPU of an answer since it costs CPU
  itself), full GCs, the adapters' outcomes and the core's peak turns running and waiting;
- the world process (``python -m bench.load.world``, started by it): the fakes (FakeOpenRouter,
  FakeSlack, FakeDiscord, FakeOpenMeteo), the traffic and the judging of what the fakes saw.
  It leads (``protocol``): which bot it needs, when to measure, what to print.

Scenarios (``scenarios``; each world in ``world/``):

- ``mixed``: Slack and Discord on one core under model 5xx, Slack 429s and redeliveries; every
  message answered once or told, none lost or doubled, overhead p99 <= 50 ms (issue #6);
- ``slack-burst``: N mentions at once through Slack's HTTP mode, a 1 s model: 500 answered
  within 2 s, no duplicates, overhead p50 <= 10 ms and p99 <= 30 ms;
- ``discord-latency``, ``discord-spread``, ``discord-one-channel``, ``discord-first-text`` (all
  four: ``discord``): a finished answer never held back (p50 <= 100 ms); 500 at once answered
  within 3 s with overhead p50 <= 10 ms; one rate-limited channel without 429 storms; the first
  text within 0.5 s of the model's first chunk;
- ``answers``: what a real answer costs, streamed one token a chunk as models do: 50, 500 and
  2,000-token answers, a weather tool round trip and a 500-conversation burst, per platform
  (Slack native streaming, Slack post-and-update, Discord): CPU per answer and per chunk, turns
  per second per core, event-loop lag p99 in the burst, first-text latency, RSS idle and peak;
- ``instances`` (issue 15): 1 vs N bot processes on one database, SQLite or PostgreSQL, 500
  conversations at once with realistic answers spread round-robin over them. Here the world
  leads: it runs in the ``python -m bench.load`` process, owns the database, and starts each
  bot process (``instance``: the same host, linked over its own stdin and stdout).

Several runs (a group, ``--model-client both``, ``answers --platform all``) each get a fresh
process, one after another, and their key figures are printed side by side at the end.
``bench.soak`` runs the mixed world for minutes and samples the bot as it goes.
"""
