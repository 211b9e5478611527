"""The fleet runner's one comment on a pull request, created once and updated in place on every push (through the
GitHub CLI, `gh api`, which the workflow signs in with its own token).

The comment is found by its first line (fleet_report.MARKER) among the comments the workflow's own account wrote:
a person quoting the marker is never overwritten, and however many pushes a pull request has, it has one comment.
"""

from __future__ import annotations

import json
from pathlib import Path

from operations.exits import cli_output
from operations.fleet_report import MARKER

BOT = "github-actions[bot]"
"""The account a workflow's GITHUB_TOKEN writes as."""
GH_TIMEOUT = 60


def _gh(*args: str) -> str:
    return cli_output(
        ["gh", "api", *args],
        what=f"gh api {' '.join(args[:3])}",
        install="needs the GitHub CLI (gh) to comment on a pull request",
        timeout=GH_TIMEOUT,
    )


def _pages(text: str) -> list[dict[str, object]]:
    """`gh api --paginate` prints one JSON array per page, one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        page, at = decoder.raw_decode(text, at)
        found += page
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def _author(comment: dict[str, object]) -> str:
    user = comment.get("user")
    return str(user.get("login", "")) if isinstance(user, dict) else ""


def publish(repository: str, number: int, body: Path) -> str:
    """The runner's comment on pull request `number` of `repository` made `body`'s text: 'updated' or 'created'."""
    comments = _pages(_gh("--paginate", f"repos/{repository}/issues/{number}/comments"))
    ours = [
        comment["id"]
        for comment in comments
        if str(comment.get("body", "")).startswith(MARKER) and _author(comment) == BOT
    ]
    if ours:
        _gh("--method", "PATCH", f"repos/{repository}/issues/comments/{ours[0]}", "-F", f"body=@{body}")
        return "updated"
    _gh("--method", "POST", f"repos/{repository}/issues/{number}/comments", "-F", f"body=@{body}")
    return "created"
