"""Private files behind the bot token, and slash commands' response URLs."""

from __future__ import annotations

import secrets
import time
from typing import Final
from urllib.parse import quote

from aiohttp import web

from tests.fakes.slack.constants import RESPONSE_URL_USES, USER_ID, JSONDict
from tests.fakes.slack.records import FileDownload, ResponsePost
from tests.fakes.slack.state import SlackState

_SIGN_IN_PAGE: Final = (
    '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="utf-8">\n'
    "<title>Slack</title>\n</head>\n<body>\n<h1>Sign in to Slack</h1>\n"
    '<form id="signin_form" action="/signin" method="post">'
    '<input type="email" name="email"><button type="submit">Sign In</button></form>\n'
    "</body>\n</html>\n"
)


class Hosting(SlackState):
    """``/files-pri/...`` (``add_file``) and ``/response/...`` (``new_response_url``)."""

    def add_file(
        self,
        team: str,
        name: str,
        content: bytes | str,
        mimetype: str,
        *,
        user: str = USER_ID,
        title: str | None = None,
        filetype: str | None = None,
    ) -> JSONDict:
        """A private file in ``team``: the Slack file object, with URLs on this fake host."""
        data = content.encode() if isinstance(content, str) else content
        file_id = f"F{next(self._file_ids):08d}X"
        key = f"{team}-{file_id}"
        quoted = quote(name)
        created = int(time.time())
        ftype = filetype or _filetype(name, mimetype)
        file: JSONDict = {
            "id": file_id,
            "created": created,
            "timestamp": created,
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": ftype,
            "pretty_type": ftype.upper(),
            "user": user,
            "user_team": team,
            "editable": mimetype.startswith("text/"),
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.base_url}/files-pri/{key}/{quoted}",
            "url_private_download": f"{self.base_url}/files-pri/{key}/download/{quoted}",
            "permalink": f"{self._workspace(team).url}files/{user}/{file_id}/{quoted}",
            "permalink_public": f"https://slack-files.com/{key}-{secrets.token_hex(5)}",
            "file_access": "visible",
        }
        self._files[file_id] = (file, data)
        return dict(file)

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """POSTs received on response URLs (one URL's if given)."""
        if url is None:
            return list(self.response_posts)
        response_id = url.rstrip("/").rsplit("/", 1)[-1]
        return [p for p in self.response_posts if p.response_id == response_id]

    async def _handle_file(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        team, _, file_id = key.partition("-")
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        workspace = self._tokens.get(token)
        entry = self._files.get(file_id)
        authorized = workspace is not None and workspace.team_id == team
        if not authorized:
            # Slack shows its sign-in page (HTTP 200) to anyone without a valid token for the team.
            response = web.Response(text=_SIGN_IN_PAGE, content_type="text/html", charset="utf-8")
        elif entry is None or entry[0]["user_team"] != team:
            response = web.Response(status=404, text="Not Found", content_type="text/html")
        else:
            file, data = entry
            response = web.Response(body=data, content_type=file["mimetype"])
            if request.match_info["tail"].startswith("download/"):
                response.headers["Content-Disposition"] = f'attachment; filename="{file["name"]}"'
        self.downloads.append(
            FileDownload(
                path=request.path,
                file_id=file_id or None,
                authorization_present="Authorization" in request.headers,
                authorized=authorized,
                status=response.status,
                content_type=response.content_type,
                at=time.monotonic(),
            )
        )
        self._changed.set()
        return response

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        response_id = request.match_info["response_id"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        uses = self._response_urls.get(response_id)
        if uses is None:
            status, text = 404, "expired_url"
        elif uses >= RESPONSE_URL_USES:
            status, text = 404, "used_url"
        elif not isinstance(body, dict):
            status, text = 400, "invalid_payload"
        else:
            self._response_urls[response_id] = uses + 1
            status, text = 200, "ok"
        self.response_posts.append(
            ResponsePost(
                response_id=response_id,
                url=str(request.url),
                body=body if isinstance(body, dict) else {},
                status=status,
                at=time.monotonic(),
            )
        )
        self._changed.set()
        if status == 200:
            return web.json_response({"ok": True})
        return web.Response(status=status, text=text)


def _filetype(name: str, mimetype: str) -> str:
    _, dot, ext = name.rpartition(".")
    if dot and ext:
        return ext.lower()
    return mimetype.rpartition("/")[2] or "binary"
