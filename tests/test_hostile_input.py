"""The scripts under hostile input: every stack file, registry entry or CSV they cannot use is refused with its path,
the problem and the fix (exit 2), never its content and never a traceback, and nothing is written; a YAML bomb
costs seconds and megabytes, not minutes and gigabytes."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline.engine import ROOT
from operations import commands, plan
from operations.transaction import LOCK
from tests.helpers.stacks import committed, copy_lab

ACME = "a0000000-0000-4000-8000-000000000001"
SECRET = "do-not-print-me-4f1c"
"""What a linked file holds: a refusal must never show it."""
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 10)}]\n" for n in range(9)
)
"""Ten levels of aliases, each ten of the one before: 10^10 items once expanded ('billion laughs')."""


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK}


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """The lab's stack files and registry, committed: a repository a user has."""
    return committed(copy_lab(tmp_path / "repo"))


def _commands(root: Path, capsys: pytest.CaptureFixture[str], *argvs: list[str]) -> list[tuple[int, str]]:
    """Each command's exit status and what it printed (out and err), the repository checked unchanged after each."""
    before = _files(root)
    said = []
    for argv in argvs:
        status = plan.main(argv[1:], root) if argv[0] == "plan" else commands.main(argv, root)
        out = capsys.readouterr()
        said.append((status, out.out + out.err))
        assert _files(root) == before, f"{argv} wrote something"
    return said


ONBOARD = ["onboard", "acme", "--subscription", ACME]
APPROVE = ["approve", "tradewinds", "--reason", "contract TW"]
EVERY_COMMAND = [["plan", "consumer"], ["plan", "--all"], ONBOARD, APPROVE, ["offboard", "contoso"]]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("config:\n  pls-saas:role: [consumer\n", "is not valid YAML"),
        ("just a scalar\n", "is not a stack file"),
        ("config: [1, 2]\n", "is not a stack file"),
        (b"config:\n  pls-saas:customer: caf\xe9\n", "is not UTF-8"),
        ("config:\n  pls-saas:role: consumer\n  pls-saas:role: provider\n", "sets 'pls-saas:role' twice"),
        (BOMB, "uses a YAML anchor or alias"),
        ("config:\n" + "  # padding\n" * 30_000, "more than the 262,144 allowed"),
    ],
    ids=["syntax", "scalar", "config-list", "latin-1", "duplicate-key", "alias-bomb", "too-big"],
)
def test_a_stack_file_nobody_can_read_is_refused_by_name_by_every_command(
    lab: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, problem: str
) -> None:
    stack_file = lab / "Pulumi.consumer.yaml"
    stack_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    for (status, said), argv in zip(_commands(lab, capsys, *EVERY_COMMAND), EVERY_COMMAND, strict=True):
        assert status == 2, (argv, said)
        assert "Pulumi.consumer.yaml: " in said and problem in said, (argv, said)
        assert "Traceback" not in said and "caf" not in said, (argv, said)


def test_a_stack_file_that_is_a_link_is_refused_without_showing_what_it_points_at(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (lab.parent / "elsewhere.yaml").write_text(f"config:\n  pls-saas:role: consumer  # {SECRET}\n")
    (lab / "Pulumi.consumer.yaml").unlink()
    (lab / "Pulumi.consumer.yaml").symlink_to(lab.parent / "elsewhere.yaml")
    for status, said in _commands(lab, capsys, ["plan", "consumer"], ONBOARD):
        assert status == 2 and "Pulumi.consumer.yaml: is a link" in said and SECRET not in said, said


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("acme.yml", "subscriptions: [x]\n", "customers/acme.yml: is not a registry entry"),
        ("acme.yaml", BOMB, "customers/acme.yaml: uses a YAML anchor or alias"),
        ("acme.yaml", f"subscriptions: [{ACME}]\ncontract: {'x' * 70_000}\n", "customers/acme.yaml: is 70,0"),
        ("acme.yaml", f"subscriptions: [{ACME}]\ncontract: {'x' * 141}\n", "customers/acme.yaml:contract"),
        ("acme.yaml", f"subscriptions: [{ACME}]\nsubscriptions: [{ACME}]\n", "sets 'subscriptions' twice"),
        ("acme.yaml", b"contract: caf\xe9\n", "customers/acme.yaml: is not UTF-8"),
        ("Acme.yaml", f"subscriptions: [{ACME}]\n", "the file's name is the customer's"),
    ],
    ids=["yml", "alias-bomb", "too-big", "contract-too-long", "duplicate-key", "latin-1", "name"],
)
def test_a_registry_entry_nobody_can_read_is_refused_by_name(
    lab: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | bytes, problem: str
) -> None:
    (lab / "customers" / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    for status, said in _commands(lab, capsys, ["plan", "provider"], ["plan", "--all"], ONBOARD, APPROVE):
        assert status == 2 and problem in said and "Traceback" not in said, said
        assert "x" * 100 not in said, "a refusal quotes at most a short stretch of a value"


def test_an_entry_that_is_a_link_is_refused_without_showing_what_it_points_at(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (lab.parent / "secret.yaml").write_text(f"subscriptions: [{ACME}]\ncontract: {SECRET}\n")
    (lab / "customers" / "acme.yaml").symlink_to(lab.parent / "secret.yaml")
    for status, said in _commands(lab, capsys, ["plan", "provider"], ONBOARD, ["offboard", "acme"]):
        assert status == 2 and "customers/acme.yaml: is a link" in said and SECRET not in said, said


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_registry_folder_that_is_not_a_folder_of_the_repository_is_refused(
    lab: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    entries = lab.parent / "entries"
    (lab / "customers").rename(entries)
    if kind == "file":
        (lab / "customers").write_text("not a folder\n")
    else:
        (lab / "customers").symlink_to(entries)
    problem = "customers/: is not a folder" if kind == "file" else "customers/: is a link"
    for status, said in _commands(lab, capsys, ["plan", "provider"], ONBOARD):
        assert status == 2 and problem in said, said


def test_an_unknown_revision_to_plan_against_is_refused(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ((status, said),) = _commands(lab, capsys, ["plan", "provider", "--against", "origin/mian"])
    assert status == 2 and "--against 'origin/mian': git knows no such revision" in said


# --- the CSV ---------------------------------------------------------------------------------------------------


def _onboard_csv(root: Path, content: str | bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    csv_file = root.parent / "customers.csv"
    csv_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    status = commands.main(["onboard", "--from", str(csv_file)], root)
    out = capsys.readouterr()
    return status, out.out + out.err


GOOD = f"customer,subscriptions,approval\nacme,{ACME},auto\n"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (f"acme,{ACME},auto\n", "customers.csv line 1: has a column 'acme' that is not one"),
        (f"customer,subscriptions,aproval\nacme,{ACME},auto\n", "did you mean approval?"),
        (f"customer,subscriptions,stack\nacme,{ACME},nope\n", "customers.csv line 2: has stack 'nope'"),
        (f"customer,subscriptions\n\n\nACME,{ACME}\n", 'customers.csv line 4: "ACME" is not a DNS label'),
        (f"customer,subscriptions,approval\nacme,{ACME}\n", "customers.csv line 2: has 2 fields, the header 3"),
        (f"customer,approval\nacme,{ACME}\n", "missing: subscriptions"),
        (b"customer,subscriptions\n" + b"caf\xe9," + ACME.encode() + b"\n", "customers.csv: is not UTF-8"),
        ("", "customers.csv: has no header and no customers"),
        ("customer,subscriptions\n", "customers.csv: has a header but no customers"),
        ('customer,subscriptions\n"acme,' + ACME + "\n", "customers.csv line"),
    ],
    ids=[
        "no-header",
        "misspelt-column",
        "stack-value",
        "blank-lines",
        "short-row",
        "required",
        "latin-1",
        "empty",
        "no-rows",
        "quoting",
    ],
)
def test_a_csv_is_read_as_documented_and_a_bad_one_refused_naming_its_line(
    lab: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, said: str
) -> None:
    before = _files(lab)
    status, output = _onboard_csv(lab, content, capsys)
    assert status == 2 and said in output and "Traceback" not in output, output
    assert _files(lab) == before


def test_a_csv_a_spreadsheet_wrote_with_a_byte_order_mark_and_blank_lines_is_read(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = "\ufeff" + GOOD.replace("\n", "\r\n") + "\r\n" + f"globex,{ACME[:-1]}2,manual\r\n" + "\r\n"
    status, output = _onboard_csv(lab, content, capsys)
    assert status == 0, output
    assert yaml.safe_load((lab / "customers" / "acme.yaml").read_text())["approval"] == "auto"
    assert (lab / "Pulumi.consumer-globex.yaml").exists()


def test_stack_no_in_a_csv_writes_the_entry_only(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, output = _onboard_csv(lab, f"customer,subscriptions,stack\nacme,{ACME},no\n", capsys)
    assert status == 0, output
    assert (lab / "customers" / "acme.yaml").exists() and not (lab / "Pulumi.consumer-acme.yaml").exists()


# --- a bomb, read in a process of its own (its memory measured apart from the tests') -----------------------


def test_an_alias_bomb_in_the_registry_is_refused_before_it_is_expanded(lab: Path) -> None:
    (lab / "customers" / "acme.yaml").write_text(BOMB)
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from operations import plan; from pathlib import Path; exit(plan.main(['provider'], Path({str(lab)!r})))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert refused.returncode == 2 and "customers/acme.yaml: uses a YAML anchor or alias" in refused.stderr
    assert peak_kib < 1024 * 1024, f"expanding it would take gigabytes; the refusal peaked at {peak_kib} KiB"
