# The bot in a container: `docker build -t chatbot .`, then
# `docker run --env-file .env -p 3000:3000 -v chatbot-data:/data chatbot`.
# python -m bot is PID 1 (exec form, no shell in between), so `docker stop`'s SIGTERM reaches
# it and it stops gently: turns in flight get BOT_SHUTDOWN_GRACE (25 s), so give the stop more
# than that (`docker stop -t 40`, compose's stop_grace_period). WEB_CONCURRENCY=N runs N bot
# processes in the container, sharing PORT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
# The bot and its dependencies, without the [dev] tools (pytest, ruff, mypy). Every
# dependency ships wheels for linux amd64 and arm64, so no compiler is needed.
RUN pip install . && rm -rf build *.egg-info

# Not root: the bot needs no privilege, only its data folder.
RUN useradd --create-home --uid 10001 bot && mkdir /data && chown bot:bot /data
USER bot

# SQLite on the /data volume unless DATABASE_URL says otherwise (PostgreSQL: see
# docker-compose.yml). PORT is set so /healthz is served in every mode, Discord's too.
ENV DATABASE_URL=sqlite:////data/bot.db \
    PORT=3000
VOLUME /data
EXPOSE 3000

# No curl in a slim image: Python asks /healthz (urlopen raises on 503, so the check fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('BOT_OPS_PORT') or os.environ['PORT']), timeout=4)"]

CMD ["python", "-m", "bot"]
