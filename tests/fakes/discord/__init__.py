"""A fake Discord (REST API v10 + gateway) on 127.0.0.1, for driving the real discord.py client.

One aiohttp server answers three things:

* REST under ``/api/v10`` (``rest_base``): the calls the bot makes through discord.py (login,
  application info, command sync, sending, fetching, listing (channel history, newest first,
  ``before``/``after``/``limit``) and editing messages, typing, a thread from
  a message, DMs, interaction callbacks, webhook follow-ups and their edits), JSON bodies only
  (the bot uploads no files: a multipart body is refused); any other path is Discord's 404.
  Bot routes need ``Authorization: Bot <token>``; interaction and webhook routes carry their
  token in the path. Every response has Discord's rate-limit headers, limits are emulated per
  route and per top-level resource (channel, guild, webhook), and 429s and other errors can be
  scripted. Errors use Discord's JSON shape (``{"message", "code", "errors"?}``).
* The gateway websocket (``gateway_url``): HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats,
  RESUME with replay of missed dispatches, sequence numbers, ``zlib-stream`` transport compression
  or plain JSON, as the client's URL asks; an opcode the bot never sends (presence, voice, member
  requests) closes the socket with 4001. Sharding as Discord does it: a session that IDENTIFYs
  with ``"shard": [id, count]`` gets only its guilds (``(guild_id >> 22) % count == id``: READY,
  GUILD_CREATE, messages, interactions) and, on shard 0, the DMs; an invalid shard closes
  with 4010; a session without ``shard`` gets everything. ``zstd-stream`` is refused (HTTP
  400, recorded in ``gateway_errors``): discord.py 2.7 asks for it only when ``zstandard`` (or
  Python 3.14's ``compression.zstd``) is importable, and neither is in this venv, so it asks
  for zlib-stream.
* A CDN look-alike (``cdn_base``) serving attachment bytes at
  ``/attachments/{channel_id}/{attachment_id}/{filename}`` for ``Attachment.read()``.

Hostile worlds, for tests of what a real Discord may send now and then: a guild whose
GUILD_CREATE is withheld (``unavailable_guilds``, then ``make_available``), a guild the client
never heard of (``add_guild`` after it connected), a webhook's message (``message_create(...,
webhook_id=...)``), an attachment that lies about its size (``AttachmentSpec(declared_size=...,
served_size=...)``, streamed, ``bytes_served`` counted), a malformed READY or RESUMED
(``mangle_next``) and any raw frame (``send_frame``).

Messages the bot creates or edits are stored per channel (``FakeMessage``: content, embeds,
components (action rows of buttons, checked as Discord does; other components refused),
allowed_mentions, message_reference, edit history) and dispatched back over the
gateway as MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE, as Discord does (content length is
checked, embed limits are not: the bot sends no embeds). The gateway honours the intents sent in
IDENTIFY: no guild MESSAGE_CREATE without GUILD_MESSAGES, blank content in guild messages that
do not mention the bot without MESSAGE_CONTENT, only the bot's own member in GUILD_CREATE
without GUILD_MEMBERS.

The modules: ``constants``, ``ids``, ``models`` (the world), ``records`` and ``wire``
(Discord's REST formats) stand alone; ``state`` holds the world, records and waits, and the
mixins over it are ``payloads``, ``shards`` (which session gets an event), ``gateway``,
``rest`` (recording, auth, rate limits), ``cdn``, ``messages`` (with ``components``),
``application`` (identity, commands, interactions), ``builders`` (the test side: messages,
slash commands, ``click_button`` on a message's button, a component interaction of type 3),
``installs`` (user installs in DMs the bot is not part of, forwards) and ``history`` (channel
history; message context-menu commands, data type 3 with ``target_id`` and
``resolved.messages``: ``send_message_command``); ``server`` puts them together as
``FakeDiscord``.

Usage with the real client::

    async with FakeDiscord() as fake:
        with point_discord_py_at(fake):  # Route.BASE and DEFAULT_GATEWAY, restored on exit
            client = discord.Client(intents=intents)
            task = asyncio.create_task(run(client, fake.token))  # async with client: start()
            ...  # wait for on_ready
            await fake.send_user_message(content=f"<@{fake.bot.id}> hi")  # -> on_message
            reply = await fake.wait_for_message(lambda m: m.reply_to is not None)
            assert reply.allowed_mentions == {"parse": []}  # AllowedMentions.none()
            fake.fail_next("PATCH /channels/{id}/messages/{id}", retry_after=0.5)
            await fake.drop_connection()  # the client RESUMEs; missed dispatches are replayed

The default world: bot ``FakeBot``, users ``alice`` (``fake.user``) and ``bob``; guild
``Fake Guild`` (``fake.guild``) with ``#general`` (``fake.channel``), ``#random`` and a public
thread ``existing thread`` under #general (``fake.thread``); a DM channel with alice
(``fake.dm_channel``). Pass ``bot=``, ``guilds=`` and ``users=`` for another world.
"""

from tests.fakes.discord.constants import (
    DEFAULT_PERMISSIONS,
    DEFAULT_TOKEN,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
)
from tests.fakes.discord.ids import (
    new_snowflake,
    new_snowflake_on_shard,
    shard_of,
    snowflake_time,
)
from tests.fakes.discord.models import (
    AttachmentSpec,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    FakeRole,
    FakeUser,
)
from tests.fakes.discord.records import (
    CommandSync,
    DispatchedEvent,
    GatewayConnection,
    RecordedRequest,
    normalize_route,
)
from tests.fakes.discord.server import FakeDiscord, point_discord_py_at

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_TOKEN",
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_MESSAGE_CONTENT",
    "AttachmentSpec",
    "CommandSync",
    "DispatchedEvent",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "GatewayConnection",
    "RecordedRequest",
    "new_snowflake",
    "new_snowflake_on_shard",
    "normalize_route",
    "point_discord_py_at",
    "shard_of",
    "snowflake_time",
]
