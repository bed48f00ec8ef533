"""`cmrelay run`: the whole relay on one machine, on embedded defaults, in the foreground.

Starts (as child processes) a private Redis when none answers, the ChartMogul sandbox with a
fresh data source, the ingest and one worker, wires them together through the environment, and
stops them all on Ctrl-C or when any of them exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType

import httpx

from cmrelay.errors import ConfigurationError
from cmrelay.redis_server import PrivateRedis, free_port, redis_answers

log = logging.getLogger("cmrelay.run")

SANDBOX_KEY = "sandbox-key"
# A fixed data source (the sandbox recreates it at every start), so CHARTMOGUL_DATA_SOURCE_UUID
# and the uuid caches in a Redis that outlives the sandbox stay meaningful across restarts.
SANDBOX_DATA_SOURCE = "ds_00000000-0000-4000-8000-00000000c0de"


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ConfigurationError(f"{url} did not answer within {timeout:.0f} s")


class _Children:
    """The processes `run` started, stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        log.info("starting %s", name)
        self.procs.append((name, subprocess.Popen(argv, env=dict(env))))  # noqa: S603

    def first_exited(self) -> str | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start_sandbox(
    children: _Children, cmrelay: list[str], env: Mapping[str, str]
) -> dict[str, str]:
    """Start the sandbox on a free port; returns the settings that point the worker at it."""
    port = free_port()
    options = ["--port", str(port), "--api-key", SANDBOX_KEY]
    options += ["--data-source", SANDBOX_DATA_SOURCE]
    children.start("sandbox", [*cmrelay, "sandbox", *options], env)
    api_base = f"http://127.0.0.1:{port}/v1"
    _wait_http(f"{api_base}/ping")
    log.info("ChartMogul sandbox at %s (state: http://127.0.0.1:%d/_sandbox/state)", api_base, port)
    return {
        "CHARTMOGUL_API_BASE": api_base,
        "CHARTMOGUL_API_KEY": SANDBOX_KEY,
        "CHARTMOGUL_DATA_SOURCE_UUID": SANDBOX_DATA_SOURCE,
    }


def run_embedded(args: argparse.Namespace) -> int:
    """Start every part in the foreground; Ctrl-C stops them all."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s cmrelay run: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # our readiness polls are not news
    env = dict(os.environ)
    env["CMRELAY_EMBEDDED"] = "1"
    private: PrivateRedis | None = None
    if not env.get("REDIS_URL"):
        if redis_answers():
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
            log.info("using the Redis that answers on 127.0.0.1:6379")
        else:
            private = PrivateRedis(port=free_port(), appendonly=True).start()
            env["REDIS_URL"] = private.url
            log.info("no Redis on 127.0.0.1:6379: started a private one at %s", private.url)
    children = _Children()
    cmrelay = [sys.executable, "-m", "cmrelay_cli"]
    stop_requested = False

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        if not env.get("CHARTMOGUL_API_KEY") and not env.get("CHARTMOGUL_WEBHOOK_URL"):
            env.update(_start_sandbox(children, cmrelay, env))
        children.start("worker", [*cmrelay, "worker"], env)
        children.start("ingest", [*cmrelay, "ingest"], env)
        host = env.get("INGEST_HOST", "127.0.0.1")
        port_s = env.get("INGEST_PORT", "8080")
        _wait_http(f"http://{host}:{port_s}/health")
        log.info("relay ready: send Segment calls to http://%s:%s/v1/batch", host, port_s)
        while not stop_requested:
            exited = children.first_exited()
            if exited:
                log.error("%s exited; stopping everything", exited)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        log.info("stopping")
        children.stop()
        if private is not None:
            private.cleanup()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cmrelay run` to the main parser."""
    run = sub.add_parser("run", help="the whole relay on embedded defaults, in the foreground")
    run.set_defaults(handler=run_embedded)
