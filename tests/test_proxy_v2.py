"""The PROXY v2 builder/parser the nginx tests use, checked against bytes written out by hand from the spec."""

from __future__ import annotations

import pytest

from tests.helpers import proxy_v2


def test_azure_tlv_is_type_0xee_subtype_1_little_endian_link_id() -> None:
    assert proxy_v2.azure_link_id_tlv(0x12345678) == bytes.fromhex("ee 0005 01 78563412")


def test_proxy_header_layout() -> None:
    header = proxy_v2.proxy_header("10.0.5.4", 51234, "10.50.2.5", 80, proxy_v2.azure_link_id_tlv(7))
    assert header == bytes.fromhex(
        "0d0a0d0a000d0a515549540a"  # signature
        "21"
        "11"
        "0014"  # v2 PROXY, TCP over IPv4, 20 bytes follow
        "0a000504"
        "0a320205"
        "c822"
        "0050"  # 10.0.5.4:51234 -> 10.50.2.5:80
        "ee000501"
        "07000000"  # PP2_TYPE_AZURE, LinkID 7
    )


def test_round_trip_keeps_addresses_and_link_id() -> None:
    header = proxy_v2.proxy_header("10.0.5.4", 51234, "10.50.2.5", 80, proxy_v2.azure_link_id_tlv(0xFEDCBA98))
    parsed, rest = proxy_v2.parse(header + b"GET /")
    assert (parsed.source, parsed.source_port, parsed.destination, parsed.destination_port) == (
        "10.0.5.4",
        51234,
        "10.50.2.5",
        80,
    )
    assert parsed.link_id == 0xFEDCBA98
    assert rest == b"GET /"


def test_probe_header_is_local_without_tlvs() -> None:
    parsed, rest = proxy_v2.parse(proxy_v2.local_header())
    assert parsed.command == proxy_v2.COMMAND_LOCAL and parsed.tlvs == {} and parsed.link_id is None
    assert rest == b""


def test_the_blogs_0xea_is_not_the_azure_tlv() -> None:
    wrong = proxy_v2.tlv(0xEA, bytes.fromhex("01 78563412"))
    parsed, _ = proxy_v2.parse(proxy_v2.proxy_header("10.0.5.4", 1, "10.50.2.5", 80, wrong))
    assert parsed.link_id is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        proxy_v2.SIGNATURE + bytes([0x11, 0x11, 0, 12]) + bytes(12),
        proxy_v2.SIGNATURE + bytes([0x21, 0x11, 0, 40]) + bytes(12),
        proxy_v2.proxy_header("10.0.5.4", 1, "10.50.2.5", 80, b"\xee\x00\x09\x01"),
    ],
    ids=["no-signature", "version-1", "truncated", "tlv-past-end"],
)
def test_malformed_headers_are_rejected(data: bytes) -> None:
    with pytest.raises(ValueError):
        proxy_v2.parse(data)
