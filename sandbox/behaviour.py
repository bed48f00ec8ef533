"""How the sandbox answers where the real ChartMogul's rule is a choice: one frozen object, set at
start (SandboxConfig.behaviour, `cmrelay sandbox` flags) and replaced through POST
/_sandbox/behaviour. Defaults are ChartMogul's where known; docs/sandbox.md says which are not."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

CONTACT_CUSTOM_MODES = ("store", "drop", "drop_unknown")
PATCH_NEW_CUSTOM_MODES = ("create", "ignore", "reject")
CUSTOM_DELETE_ANSWERS = (202, 204, 200)


class BehaviourError(ValueError):
    """A behaviour setting that makes no sense."""


@dataclass(frozen=True)
class Behaviour:
    """The sandbox's answers to the questions the reference leaves open (or that changed)."""

    lookup_matches_merged: bool = True
    """GET /customers?external_id=&data_source_uuid= also matches ids a merge added to a
    customer's external_ids/data_source_uuids lists (False: only its main ids). UNCONFIRMED."""
    state_us_only: bool = True
    """`state` is stored only while the customer's country is US (recorded; confirmed)."""
    contact_custom: str = "store"
    """Contact custom fields: store | drop (answer 201 with "custom": {}) | drop_unknown (keep
    only keys already known in the account). UNCONFIRMED; both outcomes are on record."""
    patch_new_custom: str = "create"
    """PATCH /customers/{uuid} with custom keys never created: create | ignore (silently not
    stored) | reject (422). UNCONFIRMED."""
    custom_delete_answer: int = 202
    """DELETE .../attributes/custom answers 202 {"custom", "message"} (newest recordings),
    204 with no body (recorded 2023) or 200 {"custom"} (the docs)."""
    merge_delay: float = 0.0
    """Seconds between a 202 merge/unmerge and its effect (ChartMogul merges asynchronously;
    how long it takes is not known)."""

    def updated(self, body: dict[str, Any]) -> Behaviour:
        """A copy with the settings in `body` changed; BehaviourError (nothing changed) on a bad
        or unknown one."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(body) - names)
        if unknown:
            raise BehaviourError(f"unknown behaviour settings {unknown}; known: {sorted(names)}")
        changes: dict[str, Any] = {}
        for name in ("lookup_matches_merged", "state_us_only"):
            if name in body:
                if not isinstance(body[name], bool):
                    raise BehaviourError(f"{name} must be true or false")
                changes[name] = body[name]
        if "contact_custom" in body:
            changes["contact_custom"] = _choice(
                "contact_custom", body["contact_custom"], CONTACT_CUSTOM_MODES
            )
        if "patch_new_custom" in body:
            changes["patch_new_custom"] = _choice(
                "patch_new_custom", body["patch_new_custom"], PATCH_NEW_CUSTOM_MODES
            )
        if "custom_delete_answer" in body:
            changes["custom_delete_answer"] = delete_answer(body["custom_delete_answer"])
        if "merge_delay" in body:
            changes["merge_delay"] = delay(body["merge_delay"])
        return dataclasses.replace(self, **changes)

    def snapshot(self) -> dict[str, Any]:
        """The settings as JSON."""
        return dataclasses.asdict(self)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BehaviourError(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def delete_answer(value: object) -> int:
    """A custom attribute DELETE status (202, 204 or 200), from a number or its text."""
    try:
        status = int(str(value)) if not isinstance(value, bool) else -1
    except ValueError:
        status = -1
    if status not in CUSTOM_DELETE_ANSWERS:
        raise BehaviourError(f"custom_delete_answer must be one of {CUSTOM_DELETE_ANSWERS}")
    return status


def delay(value: object) -> float:
    """A merge delay in seconds: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BehaviourError("merge_delay must be a number of seconds >= 0")
    try:
        seconds = float(value)
    except ValueError:
        raise BehaviourError("merge_delay must be a number of seconds >= 0") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise BehaviourError("merge_delay must be a number of seconds >= 0")
    return seconds
