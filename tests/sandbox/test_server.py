"""`cmrelay sandbox` as a user runs it: a real process on a port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from cmrelay.errors import ConfigurationError
from cmrelay_cli.main import build_parser
from sandbox.behaviour import Behaviour
from sandbox.runner import SandboxServer
from sandbox.server import config_from_args, parse_error_rates


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_cli_options_become_the_config() -> None:
    args = build_parser().parse_args(
        ["sandbox", "--api-key", "s3cr3t-key", "--rate-limit", "0", "--error-rate", "502=0.1"]
    )
    config = config_from_args(args)
    assert (config.api_key, config.rate_limit, config.max_in_flight) == ("s3cr3t-key", 0, 20)
    assert config.error_rates == {502: 0.1}
    assert "s3cr3t" not in repr(config)


def test_behaviour_options_become_the_config() -> None:
    config = config_from_args(build_parser().parse_args(["sandbox"]))
    assert config.behaviour == Behaviour()
    flags = ["--no-lookup-matches-merged", "--no-state-us-only", "--contact-custom", "drop"]
    flags += ["--patch-new-custom", "ignore", "--custom-delete-answer", "204"]
    config = config_from_args(build_parser().parse_args(["sandbox", *flags, "--merge-delay", "2"]))
    assert config.behaviour == Behaviour(
        lookup_matches_merged=False,
        state_us_only=False,
        contact_custom="drop",
        patch_new_custom="ignore",
        custom_delete_answer=204,
        merge_delay=2.0,
    )
    with pytest.raises(ConfigurationError):
        config_from_args(build_parser().parse_args(["sandbox", "--merge-delay", "-1"]))


def test_a_fixed_data_source_is_seeded_and_survives_reset() -> None:
    uuid = "ds_00000000-0000-4000-8000-000000000001"
    args = build_parser().parse_args(["sandbox", "--data-source", uuid])
    with SandboxServer(config_from_args(args)) as server:
        listed = httpx.get(f"{server.base_url}/data_sources", auth=("k", "")).json()
        assert [ds["uuid"] for ds in listed["data_sources"]] == [uuid]
        httpx.post(f"{server.control_url}/reset")
        again = httpx.get(f"{server.base_url}/data_sources/{uuid}", auth=("k", ""))
        assert again.json()["name"] == "Segment"
    with pytest.raises(ConfigurationError):
        config_from_args(build_parser().parse_args(["sandbox", "--data-source", "nope"]))


@pytest.mark.parametrize("bad", [["x"], ["502=2"], ["200=0.1"], ["500=0.6", "502=0.6"]])
def test_bad_error_rates_are_configuration_errors(bad: list[str]) -> None:
    with pytest.raises(ConfigurationError):
        parse_error_rates(bad)


def test_cmrelay_sandbox_serves_the_api_with_only_its_key() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cmrelay_cli", "sandbox", "--port", str(port), "--api-key", "KEY"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/ping"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(url, auth=("KEY", ""), timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the sandbox exited"
                assert time.monotonic() < deadline, "the sandbox never answered"
                time.sleep(0.1)
        assert response.json() == {"data": "pong!"}
        assert httpx.get(url, auth=("OTHER", "")).status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert b"KEY" not in output  # the key is never printed
