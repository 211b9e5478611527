"""The checks scripts/verify runs on a customer's test VM: does the private path to the provider work?

Sent to the VM by Run Command and run there by python3 (Ubuntu's; standard library only, Python 3.8+), with one
argument: the JSON of `Expected`. It prints one line per check, `ok` or `FAIL` with the reason and the fix,
then `verify: PASS` or `verify: FAIL (<checks>)`, and exits 0 only if every check passed.

1. DNS: the service's name resolves (through the VNet's resolver, so the private DNS zone) to exactly the
   private endpoint's address.
2. HTTP(S): GET the whoami page through that address answers 200 and names a provider host and its zone;
   over HTTPS the certificate is verified for the name against this VM's trusted CAs.
3. With PROXY protocol: the client address the provider saw is this VM's own (not a NAT address), and
   4. the LinkID it saw is the connection's linkIdentifier (or at least present, when that is not known here).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import urllib.parse
from typing import Any, NamedTuple

IO_TIMEOUT_SECONDS = 10
PASS_LINE = "verify: PASS"
FAIL_PREFIX = "verify: FAIL"


class Expected(NamedTuple):
    url: str
    """The whoami page by the service's name, e.g. http://api.saas.example.com/_pls/whoami.json."""
    endpoint_ip: str
    """The private endpoint's address (from its NIC)."""
    client_ip: str
    """This VM's private address: what the provider must see with PROXY protocol on."""
    proxy_protocol: bool
    link_id: str
    """The connection's linkIdentifier as the provider's Azure reports it; empty when it cannot be read here."""


class Check(NamedTuple):
    name: str
    passed: bool
    detail: str


def resolve(host: str) -> list[str]:
    """IPv4 addresses of `host` as this VM's resolver answers (getent: the same NSS path curl and apps use)."""
    try:
        answer = subprocess.run(
            ["getent", "ahostsv4", host], capture_output=True, text=True, timeout=IO_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return []
    addresses: list[str] = []
    for fields in (line.split() for line in answer.stdout.splitlines()):
        if fields and fields[0] not in addresses:
            addresses.append(fields[0])
    return addresses


def check_dns(host: str, expected: Expected) -> tuple[Check, str]:
    """The DNS check, and the address to send the request to (the endpoint's when DNS is wrong: test both)."""
    addresses = resolve(host)
    if addresses == [expected.endpoint_ip]:
        return Check("dns", True, f"{host} resolves to {expected.endpoint_ip}, the private endpoint"), addresses[0]
    if not addresses:
        problem = (
            f"{host} does not resolve from this VM: is the private DNS zone linked to this VNet, with an A record?"
        )
    else:
        problem = (
            f"{host} resolves to {', '.join(addresses)}, not to the private endpoint's {expected.endpoint_ip}: "
            "a public record or another zone answers; link the private DNS zone to this VNet (or to its DNS servers)"
        )
    return Check("dns", False, problem), expected.endpoint_ip


def fetch(url: urllib.parse.SplitResult, address: str) -> tuple[int, bytes]:
    """GET `url` from `address`, with the URL's host as Host and (HTTPS) as the name the certificate must carry."""
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    sock = socket.create_connection((address, port), timeout=IO_TIMEOUT_SECONDS)
    if url.scheme == "https":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    connection = http.client.HTTPConnection(host, port, timeout=IO_TIMEOUT_SECONDS)
    connection.sock = sock  # the address DNS (or the endpoint) gave; Host and SNI keep the service's name
    try:
        connection.request("GET", url.path or "/", headers={"Host": url.netloc, "User-Agent": "pls-verify"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def check_http(url: urllib.parse.SplitResult, address: str) -> tuple[Check, dict[str, Any]]:
    target = f"{url.geturl()} (through {address})"
    try:
        status, body = fetch(url, address)
    except ssl.SSLCertVerificationError as error:
        return Check(
            "https",
            False,
            f"{target}: certificate not trusted ({error.verify_message}). The provider serves a placeholder until "
            "its certificate is in Key Vault; a private CA must be in this VM's trust store",
        ), {}
    except (OSError, http.client.HTTPException) as error:
        return Check(
            "http",
            False,
            f"{target}: no answer ({error}). Is the connection Approved (connectionState)? Does the provider serve "
            "this protocol (https)?",
        ), {}
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if status != 200 or not isinstance(answer, dict) or not answer.get("host") or not answer.get("zone"):
        return Check("http", False, f"{target}: {status} without a provider host and zone: {body[:200]!r}"), {}
    return Check(
        url.scheme,
        True,
        f"{target}: 200 from provider host {answer['host']} in zone {answer['zone']}",
    ), answer


def check_proxy(answer: dict[str, Any], expected: Expected) -> list[Check]:
    client, seen_through, link_id = (str(answer.get(k, "")) for k in ("client", "connectedFrom", "linkId"))
    if client == expected.client_ip:
        client_check = Check("client address", True, f"the provider saw this VM's own address {client}")
    elif client == seen_through:
        client_check = Check(
            "client address",
            False,
            f"the provider saw {client}, the NAT address the request came through, not this VM's "
            f"{expected.client_ip}: PROXY protocol is off at the provider (its proxyProtocol), or this stack's "
            "proxyProtocol should be false",
        )
    else:
        client_check = Check(
            "client address", False, f"the provider saw {client or 'no address'}, not this VM's {expected.client_ip}"
        )
    if not link_id:
        link_check = Check(
            "link id",
            False,
            "the provider saw no LinkID: the PROXY header carried no Azure TLV (0xEE), or nginx cannot decode it",
        )
    elif not expected.link_id:
        link_check = Check(
            "link id",
            True,
            f"the provider saw LinkID {link_id} (not compared: the connection's linkIdentifier is not readable from "
            "here; the provider's connections output lists it)",
        )
    elif link_id == expected.link_id:
        link_check = Check("link id", True, f"the provider saw LinkID {link_id}, the connection's linkIdentifier")
    else:
        link_check = Check(
            "link id",
            False,
            f"the provider saw LinkID {link_id}, but this connection's linkIdentifier is {expected.link_id}: "
            "the request reached the service through another private endpoint",
        )
    return [client_check, link_check]


def run(expected: Expected) -> list[Check]:
    url = urllib.parse.urlsplit(expected.url)
    dns, address = check_dns(url.hostname or "", expected)
    served, answer = check_http(url, address)
    checks = [dns, served]
    if expected.proxy_protocol and answer:
        checks += check_proxy(answer, expected)
    return checks


def main(argv: list[str]) -> int:
    expected = Expected(**json.loads(argv[1]))
    checks = run(expected)
    for check in checks:
        print(f"{'ok  ' if check.passed else 'FAIL'} {check.name}: {check.detail}")
    failed = [check.name for check in checks if not check.passed]
    print(f"{FAIL_PREFIX} ({', '.join(failed)})" if failed else PASS_LINE)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
