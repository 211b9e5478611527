"""PROXY protocol v2 headers as Azure Private Link sends them (haproxy's proxy-protocol.txt, section 2.2).

Azure adds one TLV of type PP2_TYPE_AZURE (0xEE): subtype 0x01, then the private endpoint's
LinkID as a little-endian uint32. Health probes send a header too, with no TLVs.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
VERSION_2 = 0x20
COMMAND_LOCAL = 0x00
COMMAND_PROXY = 0x01
AF_INET_STREAM = 0x11
UNSPEC = 0x00
PP2_TYPE_AZURE = 0xEE
PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID = 0x01


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value


def azure_link_id_tlv(link_id: int) -> bytes:
    return tlv(PP2_TYPE_AZURE, struct.pack("<BI", PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID, link_id))


def proxy_header(source: str, source_port: int, destination: str, destination_port: int, tlvs: bytes = b"") -> bytes:
    addresses = (
        ipaddress.IPv4Address(source).packed
        + ipaddress.IPv4Address(destination).packed
        + struct.pack("!HH", source_port, destination_port)
    )
    payload = addresses + tlvs
    return SIGNATURE + struct.pack("!BBH", VERSION_2 | COMMAND_PROXY, AF_INET_STREAM, len(payload)) + payload


def local_header() -> bytes:
    """What a load balancer health probe sends: a LOCAL command, no addresses, no TLVs."""
    return SIGNATURE + struct.pack("!BBH", VERSION_2 | COMMAND_LOCAL, UNSPEC, 0)


@dataclass(frozen=True)
class Header:
    command: int
    source: str | None = None
    source_port: int | None = None
    destination: str | None = None
    destination_port: int | None = None
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def link_id(self) -> int | None:
        value = self.tlvs.get(PP2_TYPE_AZURE)
        if value is None or len(value) != 5 or value[0] != PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID:
            return None
        return int(struct.unpack("<I", value[1:])[0])


def parse(data: bytes) -> tuple[Header, bytes]:
    """Split a PROXY v2 header from the bytes that follow it; ValueError for anything malformed."""
    if len(data) < 16 or data[:12] != SIGNATURE:
        raise ValueError("not a PROXY protocol v2 signature")
    version_command, family, length = struct.unpack("!BBH", data[12:16])
    if version_command & 0xF0 != VERSION_2:
        raise ValueError(f"unsupported version {version_command >> 4}")
    if len(data) < 16 + length:
        raise ValueError("truncated header")
    body, rest = data[16 : 16 + length], data[16 + length :]
    command = version_command & 0x0F
    if command == COMMAND_LOCAL:
        return Header(command), rest
    if command != COMMAND_PROXY or family != AF_INET_STREAM or length < 12:
        raise ValueError("only TCP over IPv4 is supported")
    tlvs: dict[int, bytes] = {}
    offset = 12
    while offset < length:
        if offset + 3 > length:
            raise ValueError("truncated TLV")
        kind, size = struct.unpack("!BH", body[offset : offset + 3])
        if offset + 3 + size > length:
            raise ValueError("TLV runs past the header")
        tlvs[kind] = body[offset + 3 : offset + 3 + size]
        offset += 3 + size
    source_port, destination_port = struct.unpack("!HH", body[8:12])
    return (
        Header(
            command=command,
            source=str(ipaddress.IPv4Address(body[0:4])),
            source_port=source_port,
            destination=str(ipaddress.IPv4Address(body[4:8])),
            destination_port=destination_port,
            tlvs=tlvs,
        ),
        rest,
    )
