"""The stand-in Pulumi CLI's engine, kept warm: the real CLI, a Go binary, starts in milliseconds; the stand-in
imports the Pulumi SDK and azure-native, which took a second of every `preview` and `up`. So those two run in a
process forked from one that has imported them and run the program once (one such process for this code, serving
every backend and checkout, started by the first command that needs it, ending after IDLE_SECONDS without one).

The command hands its own stdout and stderr to the forked process (SCM_RIGHTS), which writes there as the CLI would,
and answers with its pid (a SIGINT to the command is passed on to it: the update is cancelled) and then its exit
status. Each command runs in a fresh fork: nothing one leaves in memory reaches the next.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

IDLE_SECONDS = 20.0
START_SECONDS = 60.0


CODE = Path(__file__).resolve().parent.parent
"""The repository whose program and offline engine the warm engine runs."""


def socket_path() -> Path:
    """Where the warm engine of this code listens: one for every backend and checkout (each command brings its own
    environment and folder); a change to the code starts another. A short path: a UNIX socket's is 107 bytes."""
    newest = max(
        entry.stat().st_mtime_ns
        for folder in ("offline", "pls", "pls/config", "components", ".")
        for entry in os.scandir(CODE / folder)
        if entry.name.endswith(".py")
    )
    digest = hashlib.sha256(f"{CODE}|{newest}|{os.getuid()}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pulumi-standin-{digest}.sock"


# --- the command's side --------------------------------------------------------------------------------------------


def _connected(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        return None
    return client


def _engine(path: Path, root: Path) -> socket.socket:
    """A connection to the warm engine, started first when none listens."""
    client = _connected(path)
    if client is not None:
        return client
    subprocess.Popen(
        [sys.executable, "-m", "offline.warm_engine", str(path), str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # it outlives this command, and no terminal's Ctrl-C reaches it
    )
    deadline = time.monotonic() + START_SECONDS
    while (client := _connected(path)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stand-in's engine did not start within {START_SECONDS:.0f} s")
        time.sleep(0.05)
    return client


def run_warm(argv: list[str], root: Path) -> int:
    """`pulumi <argv>` run by the warm engine, printing to this process's stdout and stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    with _engine(socket_path(), root) as client:
        request = json.dumps({"argv": argv, "cwd": str(root), "env": dict(os.environ)}).encode()
        socket.send_fds(client, [len(request).to_bytes(4, "big")], [1, 2])
        client.sendall(request)
        answers = client.makefile("rb")
        child = int(answers.readline() or 0)

        def cancel(_signum: int, _frame: object) -> None:
            if child:
                os.kill(child, signal.SIGINT)

        previous = signal.signal(signal.SIGINT, cancel)
        try:
            status = answers.readline().strip()
        finally:
            signal.signal(signal.SIGINT, previous)
    return int(status) if status else 255


# --- the engine's side ---------------------------------------------------------------------------------------------


def _warm(root: Path) -> None:
    """What makes a command slow to start, done once: the engine's imports and one run of the program (which loads
    the azure-native modules it uses)."""
    from offline.engine import SimulationError, World, simulate
    from offline.repository import deployed_config, role_of, stack_files

    provider = next((s for s in stack_files(root) if role_of(s, root) == "provider"), None)
    if provider is not None:
        with contextlib.suppress(SimulationError, Exception):
            simulate(provider, deployed_config(provider, root), world=World(root))


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """A command's request: its arguments, folder and environment, and its stdout and stderr."""
    header, fds, _, _ = socket.recv_fds(conn, 4, 2)
    return json.loads(_read_exactly(conn, int.from_bytes(header, "big"))), fds


def _keep_world(environment: dict[str, str]) -> None:
    """The world of the command's backend, kept in this process before it forks (see FileBackend.keep_world)."""
    from offline.file_backend import BackendError, FileBackend

    url = environment.get("PULUMI_BACKEND_URL", "")
    if url.startswith("file://"):
        with contextlib.suppress(BackendError, OSError, EOFError):  # the command itself then says what is wrong
            FileBackend(Path(url.removeprefix("file://")), "").keep_world()


def _answer(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked process: run the command on the caller's stdout and stderr, answer its status, end."""
    status = 255
    try:
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        conn.sendall(f"{os.getpid()}\n".encode())
        from offline.pulumi_update import run_here

        status = run_here(request["argv"], Path(request["cwd"]))
    except BaseException:  # whatever happens, the caller gets an answer
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            conn.sendall(f"{status}\n".encode())
        os._exit(0)


def serve(path: Path, root: Path) -> None:
    _warm(root)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    server.bind(str(path))
    ours = path.stat().st_ino
    server.listen(128)
    server.settimeout(0.5)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children: set[int] = set()
    idle_since = time.monotonic()

    def fork_for(conn: socket.socket) -> None:
        try:
            request, fds = _request(conn)
        except (OSError, EOFError, ValueError):  # the command went away before it asked
            conn.close()
            return
        _keep_world(request["env"])
        child = os.fork()
        if child == 0:
            server.close()
            _answer(conn, request, fds)
        children.add(child)
        for fd in fds:
            os.close(fd)
        conn.close()

    while time.monotonic() - idle_since < IDLE_SECONDS or children:
        children -= {child for child in list(children) if os.waitpid(child, os.WNOHANG)[0]}
        with contextlib.suppress(TimeoutError):
            fork_for(server.accept()[0])
            idle_since = time.monotonic()
    # Ending: no new command finds this engine (another may have taken the path: then it is not ours to remove),
    # and each command that connected meanwhile is still answered.
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_ino == ours:
            path.unlink()
    server.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            fork_for(server.accept()[0])
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
