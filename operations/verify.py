"""scripts/verify <stack>: prove a customer's private path on Azure, from its test VM, through Run Command.

Reads the consumer stack's `verify` output (and the provider stack's `connections`, when this backend can read
it, for the LinkID), runs vm/verify_probe.py on the test VM with `az vm run-command invoke`, prints what the VM
found and exits 0 when every check passed, 1 when one failed, 2 when no verdict came back.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pls import contract
from vm import verify_probe

VERIFY_SECONDS = 60.0
"""scripts/verify answers within this, verdict or not. Run Command answers in 20-40 s when the VM reaches Azure;
without that path it never does."""
PROBE_END = "PLS_VERIFY_PROBE"


VERIFY_KEYS = {
    "resourceGroupName",
    "testVmName",
    "testVmPrivateIp",
    "url",
    "endpointIp",
    "proxyProtocol",
    "providerStack",
    "privateEndpointId",
}
"""The consumer stack's `verify` output (__main__.py)."""


class VerifyError(Exception):
    """Something before the checks themselves: the stacks' outputs, az, or Run Command's answer."""


INSTALL = {
    "pulumi": "https://www.pulumi.com/docs/iac/download-install/",
    "az": "https://learn.microsoft.com/cli/azure/install-azure-cli",
}


def run_cli(command: list[str], deadline: float, silence: str = "") -> subprocess.CompletedProcess[str]:
    """A CLI's answer before `deadline` (time.monotonic); a missing or silent CLI is a VerifyError saying why."""
    try:
        return subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=max(deadline - time.monotonic(), 1.0)
        )
    except FileNotFoundError as error:
        raise VerifyError(f"{command[0]} is not installed: {INSTALL[command[0]]}") from error
    except subprocess.TimeoutExpired as error:
        raise VerifyError(f"{' '.join(command[:4])} gave no answer within {VERIFY_SECONDS:.0f} s. {silence}") from error


def pulumi_outputs(stack: str, deadline: float) -> dict[str, Any]:
    answer = run_cli(["pulumi", "stack", "output", "--json", "--stack", stack], deadline)
    if answer.returncode != 0:
        raise VerifyError(f"cannot read the outputs of stack {stack}: {answer.stderr.strip()}")
    outputs = json.loads(answer.stdout or "{}")
    return outputs if isinstance(outputs, dict) else {}


def link_identifier(provider_outputs: Mapping[str, Any], private_endpoint_id: str) -> str:
    """The connection's linkIdentifier as the provider's last deployment saw it; empty if it did not see it."""
    for connection in provider_outputs.get(contract.CONNECTIONS) or []:
        if str(connection.get("privateEndpointId", "")).lower() == private_endpoint_id.lower():
            return str(connection.get("linkIdentifier") or "")
    return ""


def provider_link_id(consumer: Mapping[str, Any], deadline: float) -> str:
    """The expected LinkID from the provider stack the consumer names, or empty (with a note saying why)."""
    provider_stack = consumer.get("providerStack")
    if not provider_stack:
        return ""  # a customer given the alias: the probe says the LinkID was not compared (or use --link-id)
    try:
        link_id = link_identifier(pulumi_outputs(provider_stack, deadline), consumer["privateEndpointId"])
    except VerifyError as error:
        print(f"note: LinkID not compared: {error}", file=sys.stderr)
        return ""
    if not link_id:
        print(
            f"note: LinkID not compared: {provider_stack}'s last deployment does not list this endpoint's connection "
            "(scripts/deploy provider refreshes its connections output)",
            file=sys.stderr,
        )
    return link_id


def expectations(consumer: Mapping[str, Any], link_id: str) -> verify_probe.Expected:
    return verify_probe.Expected(
        url=consumer["url"],
        endpoint_ip=consumer["endpointIp"],
        client_ip=consumer["testVmPrivateIp"],
        proxy_protocol=bool(consumer["proxyProtocol"]),
        link_id=link_id,
    )


def run_command_script(expected: verify_probe.Expected) -> str:
    """The shell script Run Command runs: the probe's source on python3's stdin, the expectations as argument."""
    source = Path(verify_probe.__file__).read_text()
    return f"python3 - {shlex.quote(json.dumps(expected._asdict()))} <<'{PROBE_END}'\n{source}\n{PROBE_END}\n"


def run_on_vm(resource_group: str, vm_name: str, script: str, deadline: float) -> str:
    """The script's output as Run Command returns it (stdout and stderr sections in one message)."""
    command = [
        "az", "vm", "run-command", "invoke",
        "--resource-group", resource_group,
        "--name", vm_name,
        "--command-id", "RunShellScript",
        "--scripts", script,
        "--query", "value[0].message",
        "--output", "tsv",
    ]  # fmt: skip
    answer = run_cli(
        command,
        deadline,
        silence="Run Command returns a script's output only if the VM reaches Azure on TCP 443: the stack's NAT "
        "gateway (vnetHasOutbound: false) or your own path",
    )
    if answer.returncode != 0:
        raise VerifyError(f"az vm run-command invoke failed: {answer.stderr.strip()}")
    return answer.stdout


def verdict(message: str) -> int | None:
    """0 (pass) or 1 (fail) from the probe's last line; None when its output never came back."""
    for line in (line.strip() for line in reversed(message.splitlines())):
        if line == verify_probe.PASS_LINE:
            return 0
        if line.startswith(verify_probe.FAIL_PREFIX):
            return 1
    return None


def verify(stack: str, link_id: str | None) -> int:
    deadline = time.monotonic() + VERIFY_SECONDS
    consumer: dict[str, Any] = pulumi_outputs(stack, deadline).get(contract.VERIFY) or {}
    missing = VERIFY_KEYS - set(consumer)
    if missing:
        raise VerifyError(
            f"stack {stack} has no verify output{' with ' + ', '.join(sorted(missing)) if consumer else ''}: "
            f"deploy it with testVm: true (scripts/deploy {stack})"
        )
    if link_id is None:
        link_id = provider_link_id(consumer, deadline)
    print(f"verifying {stack} from VM {consumer['testVmName']} ({consumer['testVmPrivateIp']}) through Run Command")
    message = run_on_vm(
        consumer["resourceGroupName"],
        consumer["testVmName"],
        run_command_script(expectations(consumer, link_id)),
        deadline,
    )
    print(message.rstrip())
    result = verdict(message)
    if result is None:
        raise VerifyError("the test VM gave no verdict: python3 missing from its image, or the script was cut short")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/verify", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="the consumer stack, e.g. consumer-tradewinds")
    parser.add_argument(
        "--link-id",
        help="the connection's linkIdentifier, from the provider (default: its stack's connections output)",
    )
    args = parser.parse_args(argv)
    try:
        return verify(args.stack, args.link_id)
    except VerifyError as error:
        print(f"verify: ERROR: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
