"""Every Lua script of the relay, loaded one way and called through typed methods."""

from cmrelay.lua.loader import Signature, parse_signature, script_file, script_names
from cmrelay.lua.scripts import AcceptItem, AsyncScripts, RetryMode, Scripts

__all__ = [
    "AcceptItem",
    "AsyncScripts",
    "RetryMode",
    "Scripts",
    "Signature",
    "parse_signature",
    "script_file",
    "script_names",
]
