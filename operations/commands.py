"""The registry's commands: scripts/onboard, scripts/approve and scripts/offboard. Each writes the customer registry
(and the customer's stack files), never Azure: planned whole, checked, then written all or nothing while it holds
the repository's lock, after completing (or discarding) a change an earlier run left interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from offline.engine import ROOT
from operations import customers_csv
from operations.approvals import Approval, plan_approvals
from operations.exits import CannotStartError, run
from operations.import_lists import plan_import
from operations.offboarding import plan_offboarding
from operations.onboarding import Onboarding, plan_onboarding
from operations.transaction import Change, commit, locked, recover


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"scripts/{command}", description=(__doc__ or "").split("\n\n")[0])
    if command == "onboard":
        parser.add_argument("customer", nargs="?", default="")
        parser.add_argument("--subscription", action="append", default=[], help="the customer's subscription id")
        parser.add_argument("--auto-approve", action="store_true", help="approve its connections on arrival")
        parser.add_argument("--service", default="", help="the service it reaches (default: one with room)")
        parser.add_argument("--provider", default="", help="the provider stack (default: the first with room)")
        parser.add_argument("--contract", default="", help="your contract reference")
        parser.add_argument("--no-stack", action="store_true", help="the customer runs its own side (another tenant)")
        parser.add_argument("--from", dest="csv", type=Path, help="onboard every row of a CSV, all or nothing")
        parser.add_argument("--recover", action="store_true", help="complete or discard an interrupted change")
        parser.add_argument(
            "--import-stack-lists",
            action="store_true",
            help="move the customers provider stack files still list into the registry (--provider: one stack)",
        )
    elif command == "approve":
        parser.add_argument("customer")
        parser.add_argument("--endpoint-id", default="", help="default: the endpoint its stack file creates")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--reject", action="store_true")
    else:
        parser.add_argument("customer")
    return parser


def _onboardings(args: argparse.Namespace) -> list[Onboarding]:
    if args.csv:
        return [
            Onboarding(
                customer=row.get("customer"),
                subscriptions=row.get("subscriptions").split(),
                auto_approve=row.get("approval") == "auto",
                service=row.get("service"),
                provider=row.get("provider"),
                contract=row.get("contract"),
                stack=row.get("stack") != "no",
                where=f"{args.csv.name} line {row.line}",
            )
            for row in customers_csv.read_rows(args.csv)
        ]
    return [
        Onboarding(
            customer=args.customer,
            subscriptions=args.subscription,
            auto_approve=args.auto_approve,
            service=args.service,
            provider=args.provider,
            contract=args.contract,
            stack=not args.no_stack,
        )
    ]


def _planned(command: str, args: argparse.Namespace, root: Path) -> Change:
    if command == "onboard":
        if args.recover:
            return Change()
        if args.import_stack_lists:
            if args.csv or args.customer:
                raise CannotStartError("--import-stack-lists moves what the stack files list: give no customer")
            return plan_import(root, args.provider)
        if bool(args.csv) == bool(args.customer):
            raise CannotStartError("give a customer, or --from <customers.csv>, not both")
        return plan_onboarding(root, _onboardings(args))
    if command == "approve":
        status = "Rejected" if args.reject else "Approved"
        return plan_approvals(root, [Approval(args.customer, args.reason, args.endpoint_id, status)])
    return plan_offboarding(root, args.customer)


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments.pop(0) if arguments and arguments[0] in ("onboard", "approve", "offboard") else ""
    if not command:
        print("usage: scripts/onboard, scripts/approve or scripts/offboard (see their --help)", file=sys.stderr)
        return 2
    args = _parser(command).parse_args(arguments)

    def change_the_registry() -> int:
        with locked(root, exclusive=True):
            recovered = recover(root)
            if recovered:
                print(recovered)
            change = _planned(command, args, root)
            if change.files or change.removed:
                commit(root, change)
        for path in [*change.files, *(f"{p} (removed)" for p in change.removed)]:
            print(f"wrote {path}")
        for note in change.notes:
            print(note)
        return 0

    return run(change_the_registry)


if __name__ == "__main__":
    sys.exit(main())
