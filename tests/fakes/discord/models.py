"""The world: users, channels, roles, guilds, attachments, messages and interactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.fakes.discord.constants import (
    DEFAULT_PERMISSIONS,
    DM,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    TEXT,
    JSONDict,
)
from tests.fakes.discord.ids import iso, new_snowflake, new_snowflake_on_shard, opt_str


@dataclass(slots=True)
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_payload(self) -> JSONDict:
        payload: JSONDict = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
            "public_flags": 0,
        }
        if self.bot:
            payload["bot"] = True
        return payload

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(slots=True)
class FakeChannel:
    """A guild text channel, a thread (``parent_id`` is its text channel) or a DM."""

    id: int
    type: int = TEXT
    name: str | None = None
    guild_id: int | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    recipients: list[FakeUser] = field(default_factory=list)
    position: int = 0
    topic: str | None = None
    last_message_id: int | None = None
    message_count: int = 0
    auto_archive_duration: int = 1440

    @property
    def is_thread(self) -> bool:
        return self.type in (PUBLIC_THREAD, PRIVATE_THREAD)

    @property
    def is_dm(self) -> bool:
        return self.type == DM

    def to_payload(self, *, with_guild_id: bool = True) -> JSONDict:
        payload: JSONDict = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": opt_str(self.last_message_id),
            "flags": 0,
        }
        if self.is_dm:
            payload["recipients"] = [u.to_payload() for u in self.recipients]
            return payload
        if with_guild_id or self.is_thread:
            payload["guild_id"] = opt_str(self.guild_id)
        payload.update(name=self.name, parent_id=opt_str(self.parent_id), rate_limit_per_user=0)
        if self.is_thread:
            payload.update(
                owner_id=opt_str(self.owner_id),
                message_count=self.message_count,
                total_message_sent=self.message_count,
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": iso(self.id),
                    "locked": False,
                    "create_timestamp": iso(self.id),
                },
            )
        else:
            payload.update(
                position=self.position, topic=self.topic, nsfw=False, permission_overwrites=[]
            )
        return payload


@dataclass(slots=True)
class FakeRole:
    id: int
    name: str
    permissions: int = DEFAULT_PERMISSIONS
    position: int = 0

    def to_payload(self) -> JSONDict:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(slots=True)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    channels: list[FakeChannel] = field(default_factory=list)
    threads: list[FakeChannel] = field(default_factory=list)
    members: list[FakeUser] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    member_roles: dict[int, list[int]] = field(default_factory=dict)
    """Role ids per member (user id), as the member object's ``roles`` lists them (never the
    ``@everyone`` role)."""

    @classmethod
    def create(
        cls,
        name: str,
        *,
        owner: FakeUser,
        members: Sequence[FakeUser],
        channel_names: Sequence[str] = ("general",),
        thread_names: Sequence[str] = (),
        shard: tuple[int, int] | None = None,
    ) -> FakeGuild:
        """A guild with text channels and public threads (under the first channel) and an
        ``@everyone`` role (id = guild id) with ``DEFAULT_PERMISSIONS``; ``shard``
        ``(shard_id, shard_count)``: its id puts it on that shard."""
        guild_id = new_snowflake() if shard is None else new_snowflake_on_shard(*shard)
        guild = cls(id=guild_id, name=name, owner_id=owner.id, members=list(members))
        guild.roles.append(FakeRole(id=guild_id, name="@everyone"))
        for position, channel_name in enumerate(channel_names):
            channel = FakeChannel(
                id=new_snowflake(), name=channel_name, guild_id=guild_id, position=position
            )
            guild.channels.append(channel)
        for thread_name in thread_names:
            thread = FakeChannel(
                id=new_snowflake(),
                type=PUBLIC_THREAD,
                name=thread_name,
                guild_id=guild_id,
                parent_id=guild.channels[0].id,
                owner_id=owner.id,
            )
            guild.threads.append(thread)
        return guild

    def member_payload(self, user: FakeUser, *, with_user: bool = True) -> JSONDict:
        payload: JSONDict = {
            "roles": [str(r) for r in self.member_roles.get(user.id, [])],
            "joined_at": iso(self.id),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = user.to_payload()
        return payload

    def permissions(self) -> int:
        perms = 0
        for role in self.roles:
            perms |= role.permissions
        return perms


@dataclass(slots=True)
class FakeAttachment:
    id: int
    channel_id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    url: str
    description: str | None = None
    declared_size: int | None = None
    """The ``size`` the payload claims, when it lies (default: the real size)."""
    served_size: int | None = None
    """Bytes the CDN streams instead of ``data`` (zeros, made as they are sent, never held)."""
    bytes_served: int = 0
    """Bytes the CDN wrote for this attachment so far (a client that stops reading stops it)."""

    def to_payload(self) -> JSONDict:
        size = len(self.data) if self.declared_size is None else self.declared_size
        payload: JSONDict = {
            "id": str(self.id),
            "filename": self.filename,
            "size": size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type is not None:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        return payload


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    """An attachment on a user message built by ``message_create``."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None
    declared_size: int | None = None
    """A lie: the ``size`` the payload gives (the real one by default)."""
    served_size: int | None = None
    """The CDN streams this many bytes (zeros) instead of ``data``: a file far larger than it
    says, without the test holding it in memory."""


@dataclass(slots=True)
class FakeMessage:
    """A message as the fake stores it. ``allowed_mentions`` and ``message_reference`` are what
    the client sent (Discord does not echo ``allowed_mentions``); ``edits`` are the PATCH bodies
    received, oldest first."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str = ""
    embeds: list[JSONDict] = field(default_factory=list)
    allowed_mentions: JSONDict | None = None
    message_reference: JSONDict | None = None
    attachments: list[FakeAttachment] = field(default_factory=list)
    mentions: list[FakeUser] = field(default_factory=list)
    mention_everyone: bool = False
    components: list[JSONDict] = field(default_factory=list)
    type: int = 0
    flags: int = 0
    tts: bool = False
    nonce: str | None = None
    webhook_id: int | None = None
    interaction_id: int | None = None
    thread_id: int | None = None
    edits: list[JSONDict] = field(default_factory=list)
    edited_at: float | None = None
    deleted: bool = False

    @property
    def reply_to(self) -> int | None:
        """The id of the message this one replies to, if any."""
        ref = self.message_reference
        if ref is None or ref.get("message_id") is None:
            return None
        return int(ref["message_id"])

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)


@dataclass(slots=True)
class FakeInteraction:
    """An interaction built by ``interaction_create`` and what the client did with it."""

    id: int
    token: str
    payload: JSONDict = field(repr=False)
    channel_id: int
    guild_id: int | None
    user: FakeUser
    created_at: float
    callbacks: list[JSONDict] = field(default_factory=list)
    response_type: int | None = None
    ephemeral: bool = False
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None
