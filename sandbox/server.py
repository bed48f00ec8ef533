"""`cmrelay sandbox`: the sandbox in the foreground on --host/--port."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from typing import Any

import uvicorn

from cmrelay.errors import ConfigurationError
from cmrelay.logs import configure_logging
from cmrelay.settings import load_settings
from sandbox.app import create_sandbox_app
from sandbox.behaviour import (
    CONTACT_CUSTOM_MODES,
    CUSTOM_DELETE_ANSWERS,
    PATCH_NEW_CUSTOM_MODES,
    Behaviour,
    BehaviourError,
)
from sandbox.config import SandboxConfig
from sandbox.runner import uvicorn_config

log = logging.getLogger("cmrelay.sandbox")
DATA_SOURCE_UUID = re.compile(r"^ds_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cmrelay sandbox` (kept with the sandbox, which reads them)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    parser.add_argument("--rate-limit", type=int, default=40, help="requests/s, 0 = off")
    parser.add_argument("--max-in-flight", type=int, default=20, help="0 = off")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument(
        "--latency-max", type=float, default=None, help="random latency in [--latency, this]"
    )
    parser.add_argument(
        "--error-rate",
        action="append",
        metavar="STATUS=RATE",
        help="answer this share of requests with STATUS, e.g. 502=0.05 (repeatable)",
    )
    parser.add_argument(
        "--webhook-token", default=None, help="the only Segment webhook token accepted"
    )
    parser.add_argument(
        "--data-source",
        default=None,
        metavar="DS_UUID",
        help="create a data source with this fixed uuid at start (and after each reset)",
    )
    add_behaviour_arguments(parser)


def add_behaviour_arguments(parser: argparse.ArgumentParser) -> None:
    """The behaviour options (docs/sandbox.md); each is also settable at /_sandbox/behaviour."""
    default = Behaviour()
    group = parser.add_argument_group("behaviour where ChartMogul's rule is a choice")
    switch = {"action": argparse.BooleanOptionalAction}
    options: list[tuple[str, dict[str, Any], str]] = [
        ("lookup_matches_merged", switch, "customer lookups by id also match merged-in ids"),
        ("state_us_only", switch, "store `state` only for US customers, as ChartMogul does"),
        ("contact_custom", {"choices": CONTACT_CUSTOM_MODES}, "contact custom fields"),
        (
            "patch_new_custom",
            {"choices": PATCH_NEW_CUSTOM_MODES},
            "PATCH /customers with custom keys never created",
        ),
        (
            "custom_delete_answer",
            {"type": int, "choices": CUSTOM_DELETE_ANSWERS},
            "status of DELETE .../attributes/custom",
        ),
        (
            "merge_delay",
            {"type": float, "metavar": "S"},
            "seconds from a merge's 202 to its effect",
        ),
    ]
    for name, kind, text in options:
        flag = "--" + name.replace("_", "-")
        group.add_argument(flag, default=getattr(default, name), help=text, **kind)


def behaviour_from_args(args: argparse.Namespace) -> Behaviour:
    """The behaviour named by the CLI options (absent ones keep their defaults)."""
    names = [f.name for f in dataclasses.fields(Behaviour)]
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    try:
        return Behaviour().updated(given)
    except BehaviourError as exc:
        raise ConfigurationError(f"sandbox behaviour: {exc}") from None


def parse_error_rates(items: list[str] | None) -> dict[int, float]:
    """`--error-rate 502=0.1` options as {502: 0.1}."""
    rates: dict[int, float] = {}
    for item in items or []:
        status, _, rate = item.partition("=")
        try:
            code, value = int(status), float(rate)
        except ValueError:
            raise ConfigurationError(f"--error-rate {item!r}: expected STATUS=RATE") from None
        if not 400 <= code <= 599 or not 0 <= value <= 1:
            raise ConfigurationError(f"--error-rate {item!r}: needs a 4xx/5xx status and 0..1")
        rates[code] = value
    if sum(rates.values()) > 1:
        raise ConfigurationError("--error-rate: the rates add up to more than 1")
    return rates


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The sandbox configuration named by the CLI options."""
    if args.rate_limit < 0 or args.max_in_flight < 0 or args.latency < 0:
        raise ConfigurationError("--rate-limit, --max-in-flight and --latency must be >= 0")
    source = getattr(args, "data_source", None)
    if source is not None and not DATA_SOURCE_UUID.match(source):
        raise ConfigurationError("--data-source must look like ds_<uuid>")
    return SandboxConfig(
        api_key=args.api_key or None,
        rate_limit=args.rate_limit,
        max_in_flight=args.max_in_flight,
        latency=args.latency,
        latency_max=getattr(args, "latency_max", None),
        error_rates=parse_error_rates(getattr(args, "error_rate", None)),
        webhook_token=getattr(args, "webhook_token", None),
        data_source_uuid=source,
        behaviour=behaviour_from_args(args),
    )


def serve_sandbox(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground until Ctrl-C."""
    config = config_from_args(args)
    configure_logging(
        load_settings(),
        extra_secrets=[s for s in (config.api_key, config.webhook_token) if s],
    )
    app = create_sandbox_app(config)
    log.info(
        "ChartMogul sandbox on http://%s:%d/v1 (control API: /_sandbox/, %r)%s",
        args.host, args.port, config,
        f"; data source {config.data_source_uuid}" if config.data_source_uuid else "",
    )  # fmt: skip
    uvicorn.Server(uvicorn_config(app, host=args.host, port=args.port, log_level="info")).run()
    return 0
