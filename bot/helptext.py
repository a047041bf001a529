"""What ``python -m bot --help`` and ``python -m bot chat --help`` say: written for the person
running the bot, not for its developers (the module docstrings are for them)."""

HELP = """\
An LLM chatbot for Slack and Discord, over OpenRouter, with its memory in SQLite.

commands:
  (none)    run the bot on Slack and/or Discord (whichever tokens are set) until
            Ctrl-C or SIGTERM; with --workers N, as N processes sharing PORT
  chat      talk to the bot from this terminal: the same model, tools, memory and
            commands, and only OPENROUTER_API_KEY needed (python -m bot chat --help)
  check     check the settings, ask each service whether it accepts its key or
            token, and say what would start

main settings (in the environment or in a .env file in the working directory):
  OPENROUTER_API_KEY   your OpenRouter key (required)
  BOT_MODEL            any OpenRouter model (default: {model})
  SLACK_BOT_TOKEN      Slack, with SLACK_APP_TOKEN (Socket Mode) or
                       SLACK_SIGNING_SECRET (HTTP on PORT)
  DISCORD_BOT_TOKEN    Discord
  DATABASE_URL         where conversations are kept (default: {database})
  BOT_RETENTION_DAYS   delete conversations idle this many days (default: 0, never)
  WEB_CONCURRENCY      bot processes to run, like --workers (default: 1)

Every setting, the Slack and Discord set-ups and running in production are in
README.md; .env.example lists the settings with examples."""

CHAT_HELP = """\
Talk to the bot from this terminal: the same model, tools, memory and commands as
on Slack and Discord. Only OPENROUTER_API_KEY is needed.

In the chat:
  /attach PATH   send a file (PDF, image, text) with your next message
  /help          the commands: /model, /settings, /usage, /reset, /files, /quit
  Ctrl-C         stop the answer in progress (it is not kept in the history)
  Ctrl-C twice, or Ctrl-D, at the prompt: quit

In a terminal, log lines go to bot-chat.log beside the database, not on screen.
Piped, each input line is one message, stdout gets only the answers, and progress
and log lines go to stderr:
  printf 'weather in Oslo?\\n' | python -m bot chat"""
