"""A stand-in for the GitHub CLI's `gh api`, for the test of the fleet runner's pull-request comment
(`offline/bin/gh` on PATH). It keeps a pull request's comments in the JSON file `$GH_STANDIN_COMMENTS` names.

What it imitates: `gh api [--paginate] repos/<owner>/<repo>/issues/<n>/comments` (30 comments a page; with
--paginate, each page's JSON array printed after the other, as gh does), `gh api --method POST` of that path and
`gh api --method PATCH repos/<owner>/<repo>/issues/comments/<id>`, each with `-F body=@<file>`; a comment is written by
`github-actions[bot]`, the account a workflow's token writes as. Anything else is refused (exit status 1).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

PAGE = 30
LIST = re.compile(r"repos/[^/]+/[^/]+/issues/(\d+)/comments")
ONE = re.compile(r"repos/[^/]+/[^/]+/issues/comments/(\d+)")


def main(argv: list[str]) -> int:
    store = Path(os.environ["GH_STANDIN_COMMENTS"])
    comments: list[dict[str, object]] = json.loads(store.read_text()) if store.exists() else []
    if argv[:1] != ["api"]:
        print(f"the stand-in does not imitate `gh {' '.join(argv[:1])}`", file=sys.stderr)
        return 1
    args = argv[1:]
    method = args[args.index("--method") + 1] if "--method" in args else "GET"
    path = next(a for a in args if a.startswith("repos/"))
    body = Path(args[args.index("-F") + 1].removeprefix("body=@")).read_text() if "-F" in args else ""
    if method == "GET" and LIST.fullmatch(path):
        pages = [comments[i : i + PAGE] for i in range(0, len(comments), PAGE)] or [[]]
        print("".join(json.dumps(page) for page in (pages if "--paginate" in args else pages[:1])))
    elif method == "POST" and LIST.fullmatch(path):
        comments.append({"id": 1000 + len(comments), "body": body, "user": {"login": "github-actions[bot]"}})
    elif method == "PATCH" and (found := ONE.fullmatch(path)):
        comment = next((c for c in comments if c["id"] == int(found.group(1))), None)
        if comment is None:
            print("gh: Not Found (HTTP 404)", file=sys.stderr)
            return 1
        comment["body"] = body
    else:
        print(f"the stand-in does not imitate `gh api --method {method} {path}`", file=sys.stderr)
        return 1
    store.write_text(json.dumps(comments))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
