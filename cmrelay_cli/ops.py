"""`cmrelay metrics` and `cmrelay worker-health`: one-shot operator commands over Redis."""

from __future__ import annotations

import argparse
import socket
import sys


def _metrics(args: argparse.Namespace) -> int:
    from cmrelay.keys import Keys
    from cmrelay.metrics import render, scrape_client
    from cmrelay.settings import load_settings

    settings = load_settings()
    client = scrape_client(settings.redis_url)
    try:
        text = render(client, Keys(settings.key_prefix), settings.heartbeat_ttl)
    finally:
        client.close()
    sys.stdout.write(text.decode())
    return 0 if b"cmrelay_redis_up 1.0" in text else 1


def _worker_health(args: argparse.Namespace) -> int:
    from cmrelay.keys import Keys
    from cmrelay.redis_conn import connect
    from cmrelay.settings import load_settings
    from cmrelay.status import check_health

    settings = load_settings()
    client = connect(settings.redis_url, socket_timeout=3.0, socket_connect_timeout=2.0)
    try:
        problem = check_health(
            client, Keys(settings.key_prefix), host=args.host,
            ttl=settings.heartbeat_ttl, ready=args.ready,
        )  # fmt: skip
    finally:
        client.close()
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("ok")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommands to the `cmrelay` parser."""
    metrics = sub.add_parser("metrics", help="print the relay-wide Prometheus metrics once")
    metrics.set_defaults(handler=_metrics)
    health = sub.add_parser(
        "worker-health", help="exit 0 when this host's worker is alive (orchestrator probe)"
    )
    health.add_argument("--ready", action="store_true", help="also fail while delivery is paused")
    health.add_argument("--host", default=socket.gethostname(), help="default: this host")
    health.set_defaults(handler=_worker_health)
