"""Socket Mode: ``apps.connections.open``, the ``/link/`` websocket, envelopes and their acks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from aiohttp import web

from tests.fakes.slack.builders import event_envelope
from tests.fakes.slack.constants import TEAM_ID, JSONDict
from tests.fakes.slack.records import OpenSocket, SocketAck, Workspace
from tests.fakes.slack.state import SlackState


class SocketMode(SlackState):
    """Envelopes go round-robin to the open connections; each waits for the app's ack."""

    def _apps_connections_open(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` Socket Mode connections are open (and greeted with ``hello``)."""
        await self.wait_for(lambda: len(self._sockets) >= count, timeout)

    async def deliver_socket_event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        team_id: str = TEAM_ID,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SocketAck:
        """Send an ``events_api`` envelope to ONE open connection; wait for the app's ack."""
        payload = event_envelope(
            event,
            team_id=team_id,
            api_app_id=self.app_id,
            bot_user_id=self._workspace(team_id).bot_user_id,
            event_id=event_id,
        )
        self._absorb_event(event)
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        return await self._send_envelope(envelope, timeout)

    async def deliver_socket_payload(
        self,
        payload: object,
        kind: Literal["interactive", "slash_commands", "events_api"] = "interactive",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SocketAck:
        """Send any ``payload`` (of any shape) in an envelope of ``kind``; wait for the ack."""
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
        }
        return await self._send_envelope(envelope, timeout)

    async def _send_envelope(self, envelope: JSONDict, timeout: float) -> SocketAck:  # noqa: ASYNC109
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        sock = self._sockets[next(self._socket_turn) % len(self._sockets)]
        envelope_id = str(envelope["envelope_id"])
        future: asyncio.Future[JSONDict] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = future
        try:
            await sock.ws.send_json(envelope)
            async with asyncio.timeout(timeout):
                message = await future
        finally:
            self._pending_acks.pop(envelope_id, None)
        ack = SocketAck(envelope_id, str(envelope["type"]), message, time.monotonic())
        self._changed.set()
        return ack

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)  # short close handshake
        ticket = request.query.get("ticket", "")
        await ws.prepare(request)
        if ticket not in self._tickets:
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"invalid ticket")
            return ws
        self._tickets.discard(ticket)  # a URL is good for one connection
        sock = OpenSocket(ws, time.monotonic())
        self._sockets.append(sock)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": "fake-applink",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            self._changed.set()
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    data = json.loads(msg.data)
                    future = self._pending_acks.get(str(data.get("envelope_id")))
                    if future is not None and not future.done():
                        future.set_result(data)
        finally:
            self._sockets.remove(sock)
            self._changed.set()
        return ws
