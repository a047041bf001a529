"""The world process of ``bench.load``: the fakes, the traffic and the judging, apart from the
bot so that none of their CPU or memory counts in the bot's figures.

- ``fakes``: FakeOpenRouter, FakeSlack, FakeDiscord and FakeOpenMeteo with listen backlogs for
  bursts, and the settings that point a bot at them;
- ``slack_traffic``, ``discord_traffic``: sending mentions and reading the fakes' records back
  into answers (which call put which text where, and when);
- one module per scenario family: ``mixed`` (with ``mixed_report``), ``slack_burst``,
  ``discord_sequential`` (latency, first text), ``discord_bursts`` (spread, one channel) and
  ``answers`` (realistic streamed answers, a tool round trip, a burst).
"""
