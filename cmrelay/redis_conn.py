"""Redis connections from a URL, including Sentinel: one parser for the relay state and Celery.

Sentinel URL format (our own; kombu's differs, so `celery_broker` translates it):

    sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]

`service_name` is the master group the sentinels watch (`sentinel monitor <name> ...`); the
password, if any, is the master's. Plain redis://, rediss:// and unix:// URLs pass through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from cmrelay.errors import ConfigurationError

DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed sentinel:// URL."""

    hosts: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel(url: str) -> bool:
    """True for a sentinel:// URL."""
    return urlsplit(url).scheme == "sentinel"


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Parse our sentinel URL format; raise ConfigurationError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "sentinel":
        raise ConfigurationError("not a sentinel:// URL")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, password = None, None
    if userinfo:
        user, _, secret = userinfo.partition(":")
        username, password = (unquote(user) or None), (unquote(secret) or None)
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        if not host:
            raise ConfigurationError("sentinel URL: expected host:port[,host:port...]")
        if port and not port.isdigit():
            raise ConfigurationError(f"sentinel URL: bad port {port!r}")
        hosts.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError("sentinel URL: expected /service_name[/db] after the hosts")
    db = int(path[1]) if len(path) == 2 else 0
    return SentinelUrl(tuple(hosts), path[0], db, username, password)


def _master(url: str, sentinel_class: Any, kwargs: dict[str, Any]) -> Any:
    """The master client behind a sentinel URL, found through its sentinels on every connect."""
    spec = parse_sentinel_url(url)
    timeout = kwargs.get("socket_timeout", 5.0)
    sentinel = sentinel_class(list(spec.hosts), socket_timeout=timeout, sentinel_kwargs={})
    return sentinel.master_for(
        spec.service_name, db=spec.db, username=spec.username, password=spec.password, **kwargs
    )


def connect(url: str, **kwargs: Any) -> redis.Redis:
    """A sync client for a redis://, rediss://, unix:// or sentinel:// URL."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **kwargs)
    client: redis.Redis = _master(url, Sentinel, kwargs)
    return client


def connect_async(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client for the same URL forms as `connect`."""
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **kwargs)
    client: aioredis.Redis = _master(url, AsyncSentinel, kwargs)
    return client


def celery_broker(url: str) -> tuple[str, dict[str, Any]]:
    """Broker URL and extra transport options for Celery: our sentinel URL becomes kombu's
    `sentinel://h1:p1/db;sentinel://h2:p2/db` plus `master_name`; others pass through."""
    if not is_sentinel(url):
        return url, {}
    spec = parse_sentinel_url(url)
    auth = ""
    if spec.password is not None:
        auth = f"{quote(spec.username or '', safe='')}:{quote(spec.password, safe='')}@"
    broker = ";".join(f"sentinel://{auth}{host}:{port}/{spec.db}" for host, port in spec.hosts)
    return broker, {"master_name": spec.service_name}
