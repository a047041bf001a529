"""The gateway: HELLO, IDENTIFY, heartbeats, RESUME with replay, intents; and the test side
(dispatch, replay, dropped sockets, malformed frames)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import zlib
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord.constants import (
    HEARTBEAT_INTERVAL_MS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    REDACTED,
    JSONDict,
)
from tests.fakes.discord.records import Conn, DispatchedEvent, GatewayConnection, Session
from tests.fakes.discord.shards import Shards
from tests.fakes.discord.wire import json_response


class Gateway(Shards):
    """One session per shard (or one unsharded); dispatches are kept for RESUME."""

    # ----------------------------------------------------------------- test side

    async def dispatch(self, event: str, data: JSONDict) -> int | None:
        """Send a dispatch (op 0) to the current gateway session (of the event's shard, see
        ``shards``); returns its sequence number (``None`` if no session takes it: intents, or
        its shard not connected). While the socket is down the event is kept and replayed on
        RESUME, like Discord does."""
        self._require_session()
        if event == "INTERACTION_CREATE" and str(data.get("id", "")).isdigit():
            interaction = self.interactions.get(int(data["id"]))
            if interaction is not None:
                interaction.created_at = time.monotonic()
        return await self._dispatch_to(self.sessions_for(event, data), event, data)

    async def _dispatch_to(self, sessions: list[Session], event: str, data: JSONDict) -> int | None:
        first: int | None = None
        for session in sessions:
            seq = await self._dispatch(session, event, data)
            first = seq if first is None else first
        return first

    async def replay(self, seq: int | None = None) -> int | None:
        """Send an earlier dispatch again with a new sequence number (a duplicate delivery, as
        a client sees after some resumes). Default: the last MESSAGE_CREATE."""
        candidates = [
            d
            for d in self.dispatched
            if (d.seq == seq if seq is not None else d.event == "MESSAGE_CREATE")
        ]
        if not candidates:
            raise LookupError(f"nothing to replay (seq={seq})")
        original = candidates[-1]
        return await self.dispatch(original.event, original.data)

    async def drop_connection(self, *, code: int = 4000) -> None:
        """Close the live gateway socket(s) from the server side; discord.py reconnects and
        RESUMEs (``code`` 4000 is "unknown error": resumable)."""
        for conn in list(self._conns):
            conn.record.closed_by_server = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=code, message=b"fake: dropped"), 5)

    def mangle_next(self, event: str, data: Any) -> None:
        """The next ``READY`` or ``RESUMED`` the gateway sends carries ``data`` as its ``d``
        (a malformed payload, as a broken proxy or a changed protocol could send)."""
        if event not in ("READY", "RESUMED"):
            raise ValueError("only READY and RESUMED are sent by the gateway itself")
        self._mangled.setdefault(event, deque()).append(data)

    def _payload_for(self, event: str, data: JSONDict) -> Any:
        queue = self._mangled.get(event)
        return queue.popleft() if queue else data

    async def send_frame(self, frame: Any) -> None:
        """Send ``frame`` as it is (any JSON value, even not an object) on the live socket(s),
        outside the session's sequence: a frame no well-behaved gateway would send."""
        for conn in list(self._conns):
            await self._send(conn, frame)

    async def make_available(self, guild_id: int) -> int | None:
        """Send a withheld guild's GUILD_CREATE (see ``unavailable_guilds``)."""
        self.unavailable_guilds.discard(guild_id)
        self._require_session()
        guild = self.guilds[guild_id]
        first: int | None = None
        for session in self.sessions_for("GUILD_CREATE", {"id": guild_id}):
            data = self.guild_create(guild, session.intents)
            seq = await self._dispatch(session, "GUILD_CREATE", data)
            first = seq if first is None else first
        return first

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Op 9 INVALID_SESSION: with ``resumable`` False the client IDENTIFYs anew."""
        if not resumable:
            for session in self._current_sessions(side_by_side=True):
                session.invalid = True
        for conn in list(self._conns):
            await self._send(conn, {"op": 9, "d": resumable, "s": None, "t": None})

    # ----------------------------------------------------------------- server side

    async def _dispatch_if_connected(self, event: str, data: JSONDict) -> None:
        live = [s for s in self.sessions_for(event, data) if not s.invalid]
        await self._dispatch_to(live, event, data)

    async def _dispatch(self, session: Session, event: str, data: JSONDict) -> int | None:
        shaped = self._shape_for_intents(session, event, data)
        if shaped is None:
            return None
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": shaped}
            session.history.append(frame)
            shard = None if session.shard is None else session.shard[0]
            self.dispatched.append(DispatchedEvent(session.seq, event, shaped, session.id, shard))
            if session.conn is not None:
                await self._send(session.conn, frame)
            self._notify()
            return session.seq

    def _shape_for_intents(self, session: Session, event: str, data: JSONDict) -> JSONDict | None:
        """What Discord would send this session for ``event``, or None if filtered out."""
        intents = session.intents
        if event.startswith(("GUILD_", "CHANNEL_", "THREAD_")):
            return data if intents & INTENT_GUILDS else None
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"):
            return data
        in_guild = data.get("guild_id") is not None
        if not intents & (INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES):
            return None
        if event == "MESSAGE_DELETE" or not in_guild or intents & INTENT_MESSAGE_CONTENT:
            return data
        bot_id = str(self.bot.id)
        author_id = (data.get("author") or {}).get("id")
        mentioned = any(u.get("id") == bot_id for u in data.get("mentions") or [])
        if author_id == bot_id or mentioned:
            return data
        blanked = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        blanked.pop("poll", None)
        return blanked

    async def _send(self, conn: Conn, payload: Any) -> bool:
        text = json.dumps(payload, separators=(",", ":"))
        async with conn.lock:
            if conn.ws.closed:
                return False
            try:
                if conn.compressor is not None:
                    data = conn.compressor.compress(text.encode())
                    data += conn.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await conn.ws.send_bytes(data)
                else:
                    await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
            return True

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        compression = query.get("compress") or None
        record = GatewayConnection(query=query, compression=compression, opened_at=time.time())
        self.connections.append(record)
        encoding = query.get("encoding", "json")
        if encoding != "json" or compression not in (None, "zlib-stream"):
            problem = (
                f"unsupported gateway encoding={encoding!r} compress={compression!r}: this fake "
                "speaks json with zlib-stream or no compression (zstd-stream needs zstandard)"
            )
            self.gateway_errors.append(problem)
            self._notify()
            return json_response({"message": problem, "code": 0}, status=400)
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        compressor = zlib.compressobj() if compression == "zlib-stream" else None
        conn = Conn(ws=ws, request=request, record=record, compressor=compressor)
        self._conns.append(conn)
        self._notify()
        try:
            await self._send(
                conn,
                {
                    "op": 10,
                    "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        frame = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                        break
                    if isinstance(frame, dict):
                        await self._on_frame(conn, frame)
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
        finally:
            record.closed_at = time.time()
            record.close_code = ws.close_code
            self._conns.remove(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client's own clean close ends the session, as on Discord.
                if not record.closed_by_server and ws.close_code in (1000, 1001):
                    session.invalid = True
            self._notify()
        return ws

    async def _on_frame(self, conn: Conn, frame: JSONDict) -> None:
        op = frame.get("op")
        data = frame.get("d")
        logged = dict(frame)
        if isinstance(data, dict) and "token" in data:
            logged["d"] = {**data, "token": REDACTED}
        self._notify()
        if op == 1:
            self.heartbeats += 1
            await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2 and isinstance(data, dict):
            await self._identify(conn, data, logged["d"])
        elif op == 6 and isinstance(data, dict):
            await self._resume(conn, data, logged["d"])
        elif conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
        else:
            # Presence (3), voice state (4) and member requests (8) are not emulated: the bot
            # sends none of them, and a test that does should fail loudly, not hang.
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: Conn, data: JSONDict, logged: JSONDict) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await conn.ws.close(code=4013, message=b"Invalid intent(s).")
            return
        shard = self._valid_shard(data["shard"]) if "shard" in data else None
        if "shard" in data and shard is None:
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        self.identifies.append(logged)
        self.intents = intents
        session = Session(id=secrets.token_hex(16), intents=intents, shard=shard)
        self._sessions[session.id] = session
        self._adopt(session)
        conn.session = session
        session.conn = conn
        conn.record.identified = True
        conn.record.session_id = session.id
        conn.record.shard = shard
        guilds = [g for g in self.guilds.values() if session.serves(g.id)]
        user = {**self.bot.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0}
        ready: JSONDict = {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["fake"],
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch(session, "READY", self._payload_for("READY", ready))
        for guild in guilds:
            if guild.id not in self.unavailable_guilds:
                await self._dispatch(session, "GUILD_CREATE", self.guild_create(guild, intents))

    async def _resume(self, conn: Conn, data: JSONDict, logged: JSONDict) -> None:
        self.resumes.append(logged)
        session = self._sessions.get(str(data.get("session_id")))
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if session is None or session.invalid:
            await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
            return
        last_seen = data.get("seq") or 0
        async with session.lock:
            old = session.conn
            session.conn = conn
            conn.session = session
            conn.record.resumed = True
            conn.record.session_id = session.id
            for frame in session.history:
                if frame["s"] > last_seen:
                    await self._send(conn, frame)
            session.seq += 1
            resumed = {
                "op": 0,
                "t": "RESUMED",
                "s": session.seq,
                "d": self._payload_for("RESUMED", {}),
            }
            session.history.append(resumed)
            await self._send(conn, resumed)
        self._notify()
        if old is not None and old is not conn:
            old.record.closed_by_server = True
            with contextlib.suppress(Exception):
                await old.ws.close(code=4000, message=b"Session resumed elsewhere.")
