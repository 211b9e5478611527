# Sourced by the scripts in this folder: the locked Python environment (uv + uv.lock) and preflight checks.
UV_VERSION=0.13.9

# uv from PATH, or a private copy in .tools/ (the README's commands must work on a machine without uv).
ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    if [ ! -x .tools/bin/uv ]; then
      python3 -m venv .tools
      .tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    fi
    PATH="$PWD/.tools/bin:$PATH"
  fi
}

# .venv exactly as uv.lock pins it (hashes included); fails if pyproject.toml and the lock disagree. Bytecode is
# compiled once, at install: a command would otherwise compile the SDK's modules again on every run wherever Python
# may not write its cache (PYTHONDONTWRITEBYTECODE, a read-only tree), seconds of every plan and test worker.
sync_env() {
  ensure_uv
  uv sync --locked --quiet --compile-bytecode
}

die() {
  echo "$*" >&2
  exit 2
}
