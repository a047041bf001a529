"""Platform adapters: each translates its platform's events into ``bot.events.Event`` and renders
the core's answers back, nothing else. They reach the store only through the core.

- ``slack``, ``discord``, ``console``: one package per platform, ``SlackAdapter`` and
  ``DiscordAdapter`` (or ``python -m bot chat``) its public entry.
- ``common``: what the adapters share and the core does not need (Markdown splitting, turns in
  flight at shutdown).
"""
