"""Would Azure accept this OpenSSH public key for a Linux VM? Read from the key's own bytes, never its comment.

python -m pls.ssh_keys [FILE]   # checks FILE, or finds the user's key file and prints its path

What scripts/deploy asks before it adds the user's key to a stack; scripts/fleet finds and checks it the same way.
"""

from __future__ import annotations

import argparse
import base64
import os
import struct
import sys
from pathlib import Path

from pls.azure_rules import ED25519_KEY_BYTES, MIN_RSA_BITS, SSH_KEY_TYPES

USERS_KEY_FILES = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")
MAX_KEY_BYTES = 16 * 1024
NO_KEY = (
    "no SSH public key: run ssh-keygen -t ed25519, or set SSH_PUBLIC_KEY_FILE"
    " (Azure accepts Ed25519 or RSA >= 2048 bits, not ECDSA)"
)


class _Blob:
    """Reads the length-prefixed fields of an OpenSSH public key blob; ValueError when it runs short."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def field(self) -> bytes:
        if self.offset + 4 > len(self.data):
            raise ValueError("truncated")
        (length,) = struct.unpack(">I", self.data[self.offset : self.offset + 4])
        start, self.offset = self.offset + 4, self.offset + 4 + length
        if self.offset > len(self.data):
            raise ValueError("truncated")
        return self.data[start : self.offset]


def ssh_key_problem(key: str) -> str | None:
    """Why Azure would refuse `key` as a Linux VM's SSH public key, or None."""
    if "PRIVATE KEY" in key:
        return "this is a PRIVATE key; it must never be in configuration"
    parts = key.split()
    if parts and parts[0].startswith(("ecdsa-sha2-", "ssh-dss", "sk-")):
        return f"Azure does not accept {parts[0]} keys for Linux VMs (only ssh-ed25519 and ssh-rsa of 2048+ bits)"
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return f"not an OpenSSH public key (expected one of {', '.join(SSH_KEY_TYPES)} followed by base64)"
    try:
        blob = _Blob(base64.b64decode(parts[1], validate=True))
        embedded_type = blob.field().decode("ascii")
        if embedded_type != parts[0]:
            return f"the key body is a {embedded_type} key, not {parts[0]}"
        if embedded_type == "ssh-ed25519":
            if len(blob.field()) != ED25519_KEY_BYTES:
                return f"an Ed25519 key body holds {ED25519_KEY_BYTES} bytes"
        else:
            blob.field()  # the public exponent
            bits = len(blob.field().lstrip(b"\0")) * 8
            if bits < MIN_RSA_BITS:
                return f"RSA key of {bits} bits; Azure needs at least {MIN_RSA_BITS}"
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return "the key body is not valid base64 OpenSSH data"
    return None


def public_key_file() -> Path | None:
    """The user's public key file: $SSH_PUBLIC_KEY_FILE when set (whatever it names: a wrong one is refused by
    name, never passed over), else ~/.ssh's Ed25519 key, else its RSA key; None."""
    named = os.environ.get("SSH_PUBLIC_KEY_FILE", "")
    if named:
        return Path(named).expanduser()
    return next((path for f in USERS_KEY_FILES if (path := Path(f).expanduser()).is_file()), None)


class UnreadableKeyFileError(Exception):
    """The key file cannot be read: why, in a few words."""


def read_public_key(path: Path) -> str:
    """A key file of the user's, outside the repository: any regular file will do, its start read as text (a key
    is under a kilobyte; what is not text is then refused as not a key)."""
    if path.exists() and not path.is_file():  # a FIFO would block, /dev/zero never end
        raise UnreadableKeyFileError("not a regular file (a key file is one line of text)")
    try:
        with open(path, "rb") as key_file:
            return key_file.read(MAX_KEY_BYTES).decode(errors="replace").strip()
    except OSError as error:
        raise UnreadableKeyFileError(error.strerror or str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pls.ssh_keys", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, nargs="?", help="the key file (default: found, and its path printed)")
    args = parser.parse_args(argv)
    path = args.file or public_key_file()
    if path is None:
        print(NO_KEY, file=sys.stderr)
        return 2
    try:
        problem = ssh_key_problem(read_public_key(path))
    except UnreadableKeyFileError as unreadable:
        problem = str(unreadable)
    if problem:
        print(f"{path}: {problem}. Fix: ssh-keygen -t ed25519, or set SSH_PUBLIC_KEY_FILE.", file=sys.stderr)
        return 2
    if args.file is None:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
