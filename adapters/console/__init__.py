"""The terminal: ``python -m bot chat``, the same core and store as Slack and Discord.

- ``chat``: the interactive prompt (spinner, streamed answers, /commands, Ctrl-C to stop an
  answer) and the scripted mode (one message per line on stdin, answers on stdout).
"""
