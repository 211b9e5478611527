"""A Pulumi plugin process started the way the CLI starts one: it prints the port it serves gRPC on."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> Iterator[grpc.Channel]:
    """A channel to the plugin `command` runs, ready to answer; the plugin is stopped on the way out."""
    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().decode().strip() or "0")
        assert port, server.stderr.read().decode() if server.stderr else "the plugin printed no port"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield channel
    finally:
        server.terminate()
        server.wait(timeout=10)
