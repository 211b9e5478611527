"""Azure's part of the data path, on loopback: a private endpoint's address in front of the provider's nginx.

A consumer connects to the endpoint; Private Link opens a connection to the load balancer from one of the
service's NAT IPs and, with PROXY protocol on, first sends a v2 header with the consumer's own address and
the connection's LinkID (TLV 0xEE). Here the endpoint is 127.0.0.1:<port>, the NAT IP 127.0.0.3.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator

from tests.helpers import proxy_v2
from tests.helpers.real_nginx import IO_TIMEOUT, LINK_ID

ENDPOINT_IP = "127.0.0.1"
NAT_IP = "127.0.0.3"


def _pump(consumer: socket.socket, backend: socket.socket) -> None:
    """Copy bytes both ways until both sides have finished sending."""
    selector = selectors.DefaultSelector()
    peers = {consumer: backend, backend: consumer}
    peers_by_fd = {side.fileno(): side for side in peers}
    for side in peers:
        selector.register(side, selectors.EVENT_READ)
    open_sides = 2
    while open_sides:
        events = selector.select(timeout=IO_TIMEOUT)
        if not events:
            return
        for key, _ in events:
            side = peers_by_fd[key.fd]
            try:
                data = side.recv(65536)
            except OSError:
                data = b""
            if data:
                peers[side].sendall(data)
                continue
            selector.unregister(side)
            open_sides -= 1
            with contextlib.suppress(OSError):
                peers[side].shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def private_endpoint(backend_port: int, *, proxy_protocol: bool = True, link_id: int | None = LINK_ID) -> Iterator[int]:
    """The endpoint's port on ENDPOINT_IP, relaying to 127.0.0.1:backend_port from NAT_IP while the block runs.

    `link_id` None: a PROXY header without Azure's TLV (what a broken path would send).
    """
    listener = socket.create_server((ENDPOINT_IP, 0))  # held from the start: no other process can take it
    listener.settimeout(0.02)  # how long closing the endpoint may wait
    stopping = threading.Event()

    def serve(consumer: socket.socket) -> None:
        with (
            consumer,
            socket.create_connection(
                ("127.0.0.1", backend_port), timeout=IO_TIMEOUT, source_address=(NAT_IP, 0)
            ) as backend,
        ):
            if proxy_protocol:
                client_ip, client_port = consumer.getpeername()
                tlvs = proxy_v2.azure_link_id_tlv(link_id) if link_id is not None else b""
                backend.sendall(proxy_v2.proxy_header(client_ip, client_port, ENDPOINT_IP, backend_port, tlvs))
            _pump(consumer, backend)

    def accept() -> None:
        while not stopping.is_set():
            try:
                consumer, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(consumer,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        acceptor.join(timeout=5)
        listener.close()
