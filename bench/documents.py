"""A 10-question conversation about one 5 MB PDF: what reaches OpenRouter, and how often it parses.

Two ways to ask, each over the real ``bot.documents.DocumentReader`` -> litellm -> a fake
OpenRouter on 127.0.0.1 that parses a PDF whenever a request carries it without the annotations
of an earlier parse (``tests/fakes/openrouter.py``):

- reuse (what the bot does): the annotations of the first parse are stored in SQLite and sent
  back with every later question, so OpenRouter parses once;
- re-send: the file is sent without annotations each time (a fresh conversation per question),
  so OpenRouter parses it every time, as a bot that drops the annotations would.

Both send the file's bytes with each question that consults it (OpenRouter needs the file to
answer from); what the annotations save is the parse: time, and money with the paid engines
(mistral-ocr is billed per page). Turns that do not consult the document send none of it.

    python -m bench.documents [--questions 10] [--mb 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bot.settings import load_settings, prepare_library_environment

prepare_library_environment()

from bot.documents import PDF_MIME, DocumentReader  # noqa: E402
from storage import open_store  # noqa: E402
from tests.fakes.openrouter import FakeOpenRouter  # noqa: E402
from tests.fakes.pdf import make_pdf  # noqa: E402


async def run(mode: str, questions: int, pdf: bytes, tmp: Path) -> tuple[int, int, list[float]]:
    async with FakeOpenRouter(record_bodies=False) as fake:
        settings = load_settings(
            _env_file=None,
            OPENROUTER_API_KEY=fake.api_key,
            OPENROUTER_BASE_URL=fake.base_url,
            DATABASE_URL=f"sqlite:///{tmp / f'{mode}.db'}",
            LOG_LEVEL="WARNING",
        )
        store = await open_store(settings.database_url)
        http = aiohttp.ClientSession()
        try:
            reader = DocumentReader(store, settings, http)
            times: list[float] = []
            for n in range(questions):
                conversation = "bench:c" if mode == "reuse" else f"bench:c{n}"
                await store.save_file(
                    conversation=conversation, name="report.pdf", mime_type=PDF_MIME, data=pdf
                )
                started = time.perf_counter()
                answer = await reader.ask(
                    conversation=conversation,
                    channel="bench:channel",
                    model=settings.bot_model,
                    question=f"Question {n}: what does page one say?",
                    document="",
                )
                times.append((time.perf_counter() - started) * 1000)
                if "Revenue" not in answer:
                    raise RuntimeError(f"the answer did not use the document: {answer[:200]}")
            sent = sum(r.body_bytes for r in fake.chat_requests)
            return sent, fake.counters.parses, times
        finally:
            await http.close()
            await store.close()


async def main_async(questions: int, mb: float) -> None:
    pdf = make_pdf(
        ["Quarterly report. Revenue grew 42 percent.", "Page two: costs fell."],
        pad_to=int(mb * 1_000_000),
    )
    print(f"{questions} questions about one {len(pdf) / 1e6:.1f} MB PDF (engine pdf-text)")
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as tmp:
        results = {mode: await run(mode, questions, pdf, Path(tmp)) for mode in ("reuse", "resend")}
    for mode, (sent, parses, times) in results.items():
        label = "annotations reused (the bot)" if mode == "reuse" else "re-sent without annotations"
        print(
            f"  {label:30} parses {parses:3d}   bytes sent {sent / 1e6:7.1f} MB"
            f"   per question median {statistics.median(times):6.1f} ms"
        )
    reuse, resend = results["reuse"], results["resend"]
    print(
        f"  parses saved: {resend[1] - reuse[1]} of {resend[1]} "
        f"(target: 1 parse per conversation: {'met' if reuse[1] == 1 else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--mb", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.questions, args.mb))


if __name__ == "__main__":
    main()
