"""The CDN look-alike: attachment bytes at ``/attachments/{channel}/{id}/{filename}``."""

from __future__ import annotations

import mimetypes
import secrets
import time
from urllib.parse import quote

from aiohttp import web

from tests.fakes.discord.ids import new_snowflake
from tests.fakes.discord.models import FakeAttachment
from tests.fakes.discord.state import DiscordState


class Cdn(DiscordState):
    """Attachments get URLs on this host; a lying one streams its ``served_size``."""

    def _new_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        description: str | None = None,
    ) -> FakeAttachment:
        attachment_id = new_snowflake()
        now = int(time.time())
        url = (
            f"{self.cdn_base}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
            f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        )
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0]
        attachment = FakeAttachment(
            id=attachment_id,
            channel_id=channel_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=url,
            description=description,
        )
        self._attachments[attachment_id] = attachment
        return attachment

    async def _get_attachment(self, request: web.Request) -> web.StreamResponse:
        attachment_id = request.match_info["attachment_id"]
        attachment = self._attachments.get(int(attachment_id)) if attachment_id.isdigit() else None
        if attachment is None or str(attachment.channel_id) != request.match_info["channel_id"]:
            return web.Response(status=404, text="This content is no longer available.")
        content_type = attachment.content_type or "application/octet-stream"
        if attachment.served_size is None:
            attachment.bytes_served += len(attachment.data)
            return web.Response(body=attachment.data, content_type=content_type)
        # Streamed with its true length, chunk by chunk, so what a client reads before it hangs
        # up is what was served (give or take the sockets' buffers).
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = attachment.served_size
        await response.prepare(request)
        chunk = bytes(64 * 1024)
        left = attachment.served_size
        try:
            while left > 0:
                part = chunk[: min(left, len(chunk))]
                await response.write(part)
                attachment.bytes_served += len(part)
                left -= len(part)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading and closed the connection
        return response
