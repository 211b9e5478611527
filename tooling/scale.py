"""A repository of many customers, generated the way the README onboards them: for the benchmark and the tests
that prove a check's cost does not grow with the number of customers.

Each provider stack serves at most 100 customers (Azure's limit on a Private Link Service's visibility); every
fourth customer is auto-approved, every other manual one approved by its endpoint's id, the rest Pending.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import yaml

from tooling.repository import LAB

PER_PROVIDER = 100


def provider_stack(index: int) -> str:
    return "provider" if index == 0 else f"provider-{index + 1}"


def subscription_of(number: int) -> str:
    return f"{number:08d}-5555-4555-8555-555555555555"


def generate(root: Path, customers: int) -> list[str]:
    """Write the lab's stack files, then `customers` more customers over as many providers as they need, into
    `root`; the generated customers' stack names."""
    for lab_file in LAB.glob("Pulumi.*.yaml"):
        shutil.copy(lab_file, root / lab_file.name)
    lab_provider = yaml.safe_load((LAB / "Pulumi.provider.yaml").read_text())["config"]
    template = yaml.safe_load((LAB / "Pulumi.consumer.yaml").read_text())["config"]
    names = []
    for index in range(math.ceil(customers / PER_PROVIDER)):
        numbers = range(index * PER_PROVIDER, min(customers, (index + 1) * PER_PROVIDER))
        # The first provider keeps the lab's customers too, and generated ones fill it to Azure's limit.
        own = list(lab_provider["pls-saas:visibility"]) if index == 0 else []
        own_auto = list(lab_provider.get("pls-saas:autoApproval", [])) if index == 0 else []
        numbers = numbers[: PER_PROVIDER - len(own)] if index == 0 else numbers
        provider = {
            **lab_provider,
            "pls-saas:serviceName": f"saas{index + 1}",
            "pls-saas:visibility": own + [subscription_of(n) for n in numbers],
            "pls-saas:autoApproval": own_auto + [subscription_of(n) for n in numbers if n % 4 == 0],
            "pls-saas:approvedConnections": [
                f"{_endpoint_id(n)} | contract C-{n}" for n in numbers if n % 4 != 0 and n % 2 == 1
            ],
        }
        _write(root / f"Pulumi.{provider_stack(index)}.yaml", provider)
        for n in numbers:
            name = f"c{n:04d}"
            consumer = {
                **template,
                "azure-native:subscriptionId": subscription_of(n),
                "pls-saas:customer": name,
                "pls-saas:providerStack": f"organization/pls-saas/{provider_stack(index)}",
                "pls-saas:requestMessage": f"Customer: {name}",
                "pls-saas:autoApproved": n % 4 == 0,
            }
            _write(root / f"Pulumi.consumer-{name}.yaml", consumer)
            names.append(f"consumer-{name}")
    return names


def _endpoint_id(number: int) -> str:
    name = f"c{number:04d}"
    return (
        f"/subscriptions/{subscription_of(number)}/resourceGroups/{name}-rg"
        f"/providers/Microsoft.Network/privateEndpoints/{name}-saas-pe"
    )


def _write(path: Path, config: dict[str, object]) -> None:
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
