"""Slack: slack_bolt's AsyncApp over Socket Mode or HTTP, on top of the core.

- ``app``: ``SlackAdapter``, the public entry: start, close, health; owns what the others share.
- ``transport``: the bolt app and HTTP mode's ``POST /slack/events`` (signatures checked on the
  raw bytes, malformed bodies refused).
- ``connection``: who the bot is to Slack (``auth.test``), a token revoked mid-run, Socket Mode.
- ``listeners``: Slack's events: messages for the bot, answered in their thread.
- ``assistant``: the AI-app surfaces of the DM: greeting, suggested prompts, thread titles,
  the channel the user is viewing.
- ``home``, ``home_view``: the Home tab and its channel-settings modal.
- ``commands``: the slash commands from ``bot.commands.COMMANDS``, ``/ask`` among them.
- ``translate``, ``payloads``: Slack payloads -> ``bot.events.Event``, and their shape checks.
- ``files``: attachments fetched with the bot token from Slack's own hosts only.
- ``reply``: an answer streamed into a Slack thread (native streaming, or edits).
- ``outbox``: which of that answer's text goes into which message, and where each one ends.
- ``credentials``: ``python -m bot check``'s look at the tokens.
- ``manifest.yml``: the Slack app manifest, tested against the listeners and commands.
"""

from adapters.slack.app import SlackAdapter, require_slack_settings

__all__ = ["SlackAdapter", "require_slack_settings"]
