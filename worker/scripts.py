"""The engine's Lua scripts (files in worker/lua/), registered once per Redis client."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, cast

import redis
from redis.commands.core import Script

_LUA_DIR = Path(__file__).resolve().parent / "lua"


@cache
def _source(name: str) -> str:
    return (_LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Callable scripts by file name: `scripts.run("lease", keys, args)`; EVALSHA with fallback."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, Script] = {}

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script atomically and return its reply."""
        script = self._scripts.get(name)
        if script is None:
            script = self.client.register_script(_source(name))
            self._scripts[name] = script
        return cast(Any, script(keys=keys, args=args))
