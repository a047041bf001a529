"""Files shared in conversations, stored once per content hash, and OpenRouter's annotations of
them (a parsed PDF, kept per conversation so a follow-up question is not parsed again)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

from .base import JSONDict, StoredFile
from .history import conversation_id, json_text
from .sql import Backend, storable


class FileQueries:
    """The ``Store`` methods for files and their annotations."""

    _db: Backend

    async def save_file(
        self, *, conversation: str, name: str, mime_type: str, data: bytes
    ) -> StoredFile:
        # Hashing a large upload takes milliseconds: off the event loop.
        sha256 = await asyncio.to_thread(_sha256, data)
        name = storable(name)
        now = time.time()
        async with self._db.transaction() as db:
            row_id = await conversation_id(db, conversation)
            await db.execute(
                "INSERT INTO files (sha256, name, mime_type, size, data, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                (sha256, name, mime_type, len(data), data, now),
            )
            # The latest name the file was shared under in this conversation wins.
            await db.execute(
                "INSERT INTO conversation_files (conversation_id, sha256, name, added_at)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conversation_id, sha256) DO UPDATE SET name = excluded.name",
                (row_id, sha256, name, now),
            )
            rows = await db.fetchall(
                "SELECT mime_type, size, created_at FROM files WHERE sha256 = ?", (sha256,)
            )
        mime, size, created_at = rows[0]
        return StoredFile(
            sha256=sha256, name=name, mime_type=mime, size=size, created_at=created_at
        )

    async def get_file_bytes(self, *, sha256: str) -> bytes | None:
        async with self._db.locked() as db:
            rows = await db.fetchall("SELECT data FROM files WHERE sha256 = ?", (sha256,))
        return bytes(rows[0][0]) if rows else None

    async def list_files(self, *, conversation: str) -> list[StoredFile]:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT f.sha256, cf.name, f.mime_type, f.size, f.created_at"
                " FROM conversation_files AS cf JOIN files AS f ON f.sha256 = cf.sha256"
                " WHERE cf.conversation_id = (SELECT id FROM conversations WHERE key = ?)"
                f" ORDER BY cf.added_at, {self._db.dialect.link_order}",
                (conversation,),
            )
        return [
            StoredFile(sha256=sha, name=name, mime_type=mime, size=size, created_at=created_at)
            for sha, name, mime, size, created_at in rows
        ]

    async def save_annotations(
        self, *, conversation: str, file_sha256: str, annotations: list[JSONDict]
    ) -> None:
        annotations_json = json_text(annotations)
        async with self._db.transaction() as db:
            row_id = await conversation_id(db, conversation)
            await db.execute(
                "INSERT INTO file_annotations"
                " (conversation_id, file_sha256, annotations_json, updated_at)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conversation_id, file_sha256) DO UPDATE SET"
                " annotations_json = excluded.annotations_json, updated_at = excluded.updated_at",
                (row_id, file_sha256, annotations_json, time.time()),
            )

    async def load_annotations(
        self, *, conversation: str, file_sha256: str
    ) -> list[JSONDict] | None:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT annotations_json FROM file_annotations"
                " WHERE conversation_id = (SELECT id FROM conversations WHERE key = ?)"
                " AND file_sha256 = ?",
                (conversation, file_sha256),
            )
        if not rows:
            return None
        annotations: list[JSONDict] = json.loads(rows[0][0])
        return annotations


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
