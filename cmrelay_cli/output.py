"""What the read-only views (`entity`, `trace`) share: reading one view from Redis, and
printing it as JSON or as text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

import redis

from cmrelay.keys import Keys
from cmrelay.redis_conn import connect
from cmrelay.settings import Settings

T = TypeVar("T")


def read_view(settings: Settings, read: Callable[[redis.Redis, Keys], T]) -> T:
    """Run `read` on a fresh connection to the relay's Redis, closed afterwards."""
    client = connect(settings.redis_url)
    try:
        return read(client, Keys(settings.key_prefix))
    finally:
        client.close()


def emit(view: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str],
         out: TextIO) -> None:  # fmt: skip
    """Print the view as indented JSON, or through `render`."""
    if as_json:
        json.dump(view, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(render(view))
