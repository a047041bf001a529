"""The fake's state: the world, recordings, stored messages, and the waits."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from tests.fakes._server import LoopbackServer
from tests.fakes.discord.constants import (
    API_PREFIX,
    DEFAULT_APPLICATION_FLAGS,
    DEFAULT_LIMIT,
    DEFAULT_PER_S,
    DEFAULT_TOKEN,
    DM,
    GATEWAY_PATH,
    JSONDict,
)
from tests.fakes.discord.ids import new_snowflake
from tests.fakes.discord.models import (
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    FakeUser,
)
from tests.fakes.discord.records import (
    CommandSync,
    Conn,
    DispatchedEvent,
    GatewayConnection,
    RecordedRequest,
    RouteLimit,
    Scripted,
    Session,
    Window,
    normalize_route,
)
from tests.fakes.discord.wire import unknown


class DiscordState(LoopbackServer):
    """The world, every record, the stored messages and the waits.

    The gateway, the REST routes, the CDN and the test-side builders are mixins over this
    (``tests.fakes.discord.server.FakeDiscord`` puts them together).
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        bot: FakeUser | None = None,
        guilds: Sequence[FakeGuild] | None = None,
        users: Sequence[FakeUser] = (),
        application_flags: int = DEFAULT_APPLICATION_FLAGS,
    ) -> None:
        self.token = token
        """The bot token accepted on REST (``Bot <token>``) and in IDENTIFY / RESUME."""
        self.bot = bot or FakeUser(id=new_snowflake(), username="FakeBot", bot=True)
        self.application_id = self.bot.id
        """Like bots made since 2019: the application id is the bot user's id."""
        self.application_flags = application_flags

        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        if guilds is None:
            alice = FakeUser(id=new_snowflake(), username="alice", global_name="Alice")
            bob = FakeUser(id=new_snowflake(), username="bob", global_name="Bob")
            users = [alice, bob, *users]
            guilds = [
                FakeGuild.create(
                    "Fake Guild",
                    owner=alice,
                    members=[self.bot, alice, bob],
                    channel_names=("general", "random"),
                    thread_names=("existing thread",),
                )
            ]
        for user in users:
            self.users[user.id] = user
        for guild in guilds:
            self.add_guild(guild)
        humans = [u for u in self.users.values() if not u.bot]
        if not humans:
            raise ValueError("the world needs at least one non-bot user")
        self.user = humans[0]
        """The first non-bot user (``alice`` in the default world): the default author."""
        self.dm_channel = self.dm_channel_for(self.user)

        self.messages: dict[int, list[FakeMessage]] = {}
        """Every message per channel id, oldest first (deleted ones kept, flagged)."""
        self.commands: dict[int | None, list[JSONDict]] = {}
        """Registered application commands per guild id (``None``: global)."""
        self.command_syncs: list[CommandSync] = []
        self.interactions: dict[int, FakeInteraction] = {}
        self.requests: list[RecordedRequest] = []
        """Every REST request, oldest first; those to API paths this fake does not implement
        (answered 404) have ``route == ""``."""

        self.connections: list[GatewayConnection] = []
        self.identifies: list[JSONDict] = []
        self.resumes: list[JSONDict] = []
        self.gateway_errors: list[str] = []
        self.dispatched: list[DispatchedEvent] = []
        self.heartbeats = 0
        self.intents: int | None = None
        """The intents of the last IDENTIFY."""
        self.unavailable_guilds: set[int] = set()
        """Guilds READY lists (as unavailable, like all) whose GUILD_CREATE is not sent after
        it, as in a Discord outage or before a big bot's GUILD_CREATE burst reaches them;
        ``make_available`` sends it."""
        self._mangled: dict[str, deque[Any]] = {}

        super().__init__(port=port)
        self._attachments: dict[int, FakeAttachment] = {}
        self._messages_by_id: dict[int, FakeMessage] = {}
        self._sessions: dict[str, Session] = {}
        self._session: Session | None = None
        """The latest session that IDENTIFYed without a shard (see ``shards``)."""
        self._shards: dict[int, Session] = {}
        """The latest session per shard id."""
        self._conns: list[Conn] = []
        self._default_limit = RouteLimit(DEFAULT_LIMIT, DEFAULT_PER_S)
        self._limits: dict[str, RouteLimit] = {}
        self._windows: dict[tuple[str, str], Window] = {}
        self._scripted: dict[str, deque[Scripted]] = {}
        self._routes: dict[str, str] = {}  # normalized -> template
        self._changed = asyncio.Event()
        self._command_ids: dict[tuple[int | None, str], int] = {}

    # ----------------------------------------------------------------- addresses

    @property
    def cdn_base(self) -> str:
        """Attachment URLs live here (and ``discord.Asset.BASE``, so that nothing reaches
        Discord's CDN)."""
        return self.host_url

    @property
    def rest_base(self) -> str:
        """For ``discord.http.Route.BASE``."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """For ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (as a ``yarl.URL``); also
        READY's ``resume_gateway_url``. The client adds ``?v=10&encoding=json&compress=...``."""
        return f"ws://127.0.0.1:{self.port}{GATEWAY_PATH}"

    # ----------------------------------------------------------------- the world

    @property
    def guild(self) -> FakeGuild:
        """The first guild."""
        return next(iter(self.guilds.values()))

    @property
    def channel(self) -> FakeChannel:
        """The first text channel of the first guild (``#general``)."""
        return self.guild.channels[0]

    @property
    def thread(self) -> FakeChannel:
        """The first thread of the first guild."""
        if not self.guild.threads:
            raise LookupError("the first guild has no thread")
        return self.guild.threads[0]

    def add_guild(self, guild: FakeGuild) -> FakeGuild:
        """Add a guild to the world (before the client connects, or dispatch GUILD_CREATE)."""
        self.guilds[guild.id] = guild
        for user in guild.members:
            self.users.setdefault(user.id, user)
        for channel in (*guild.channels, *guild.threads):
            channel.guild_id = guild.id
            self.channels[channel.id] = channel
        return guild

    def add_user(self, username: str, *, global_name: str | None = None) -> FakeUser:
        """A new user, member of every guild."""
        user = FakeUser(id=new_snowflake(), username=username, global_name=global_name)
        self.users[user.id] = user
        for guild in self.guilds.values():
            guild.members.append(user)
        return user

    def get_user_by_name(self, username: str) -> FakeUser:
        for user in self.users.values():
            if user.username == username:
                return user
        raise LookupError(f"no user named {username!r}")

    def dm_channel_for(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipients and channel.recipients[0].id == user.id:
                return channel
        channel = FakeChannel(id=new_snowflake(), type=DM, recipients=[user])
        self.channels[channel.id] = channel
        return channel

    def _channel(self, channel_id: int) -> FakeChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise unknown("Channel", 10003) from None

    def _guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return None if channel.guild_id is None else self.guilds.get(channel.guild_id)

    # ----------------------------------------------------------------- stored messages and requests

    def attachment(self, attachment_id: int | str) -> FakeAttachment:
        return self._attachments[int(attachment_id)]

    def message(self, message_id: int) -> FakeMessage:
        return self._messages_by_id[message_id]

    def messages_in(self, channel_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        return [m for m in self.messages.get(channel_id, []) if include_deleted or not m.deleted]

    def bot_messages(self, channel_id: int | None = None) -> list[FakeMessage]:
        """Messages the bot wrote (including interaction responses), oldest first."""
        found = [
            m for m in self._messages_by_id.values() if m.author.id == self.bot.id and not m.deleted
        ]
        if channel_id is not None:
            found = [m for m in found if m.channel_id == channel_id]
        return sorted(found, key=lambda m: m.id)

    def _store(self, message: FakeMessage) -> FakeMessage:
        self.messages.setdefault(message.channel_id, []).append(message)
        self._messages_by_id[message.id] = message
        channel = self.channels.get(message.channel_id)
        if channel is not None:
            channel.last_message_id = message.id
            channel.message_count += 1
        return message

    def _message_in(self, channel_id: int, message_id: int) -> FakeMessage:
        message = self._messages_by_id.get(message_id)
        if message is None or message.channel_id != channel_id or message.deleted:
            raise unknown("Message", 10008)
        return message

    def requests_to(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.matches(route)]

    def _known_route(self, route: str) -> str:
        key = normalize_route(route)
        if key not in self._routes:
            known = ", ".join(sorted(self._routes.values()))
            raise ValueError(f"unknown route {route!r}; known: {known}")
        return key

    # ----------------------------------------------------------------- waiting

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], Any]) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every request, gateway frame
        and dispatch) and return its value. Waits for ever: wrap it in ``asyncio.timeout``."""
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            await changed.wait()

    async def wait_for_request(self, route: str, *, count: int = 1) -> RecordedRequest:
        """The ``count``-th answered request to ``route`` (``"POST /channels/{id}/typing"``)."""
        self._known_route(route)

        def found() -> RecordedRequest | None:
            done = [r for r in self.requests_to(route) if r.status is not None]
            return done[count - 1] if len(done) >= count else None

        result: RecordedRequest = await self.wait_until(found)
        return result

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        channel_id: int | None = None,
    ) -> FakeMessage:
        """The first message from the bot (optionally in ``channel_id``) matching ``predicate``."""

        def found() -> FakeMessage | None:
            for message in self.bot_messages(channel_id):
                if predicate is None or predicate(message):
                    return message
            return None

        result: FakeMessage = await self.wait_until(found)
        return result

    async def wait_for_identify(self, count: int = 1) -> None:
        await self.wait_until(lambda: len(self.identifies) >= count)

    async def wait_for_resume(self, count: int = 1) -> None:
        await self.wait_until(lambda: len(self.resumes) >= count)
