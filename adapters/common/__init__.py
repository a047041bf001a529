"""What every chat adapter needs and the core does not: pure text work and shutdown bookkeeping.

- ``text``: long Markdown answers cut into chunks a platform accepts (code fences closed and
  reopened, entities and links never split), as pure functions.
- ``inflight``: the answers an adapter is writing, so that shutdown lets them finish.

They live here, not in ``bot/``, because only the adapters use them: the core streams text and
knows nothing of a platform's message limits or of its listener tasks.
"""
