"""Console users: one `name role argon2-hash` per line of the PARTNERSYNC_CONSOLE_USERS file.

A viewer reads; an operator may also reveal personal data, replay and purge dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from partnersync.config import write_private

ROLES = ("viewer", "operator")
_hasher = PasswordHasher()
# verified against when the name is unknown: a wrong name costs what a wrong password does
_DUMMY = _hasher.hash("not a password anyone has")


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def operator(self) -> bool:
        return self.role == "operator"


class UsersError(ValueError):
    pass


def read(path: str | Path | None) -> dict[str, tuple[str, str]]:
    """name -> (role, hash). A missing file or a line off the format is an error naming it."""
    if not path:
        return {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UsersError(f"PARTNERSYNC_CONSOLE_USERS: cannot read {path}: {exc.strerror}") from None
    users: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ROLES:
            raise UsersError(f"{path}:{n}: expected `name {'|'.join(ROLES)} hash`")
        users[parts[0]] = (parts[1], parts[2])
    return users


def verify(users: dict[str, tuple[str, str]], name: str, password: str) -> User | None:
    role, hashed = users.get(name, ("", _DUMMY))
    try:
        _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(name, role) if role else None


def add(path: str | Path, name: str, role: str, password: str) -> None:
    """Add or replace a user; the file is written readable by its owner only."""
    if role not in ROLES:
        raise UsersError(f"role must be one of {', '.join(ROLES)}")
    if not name or any(c.isspace() for c in name):
        raise UsersError("a user name has no spaces")
    if len(password) < 8:
        raise UsersError("a password has at least 8 characters")
    users = read(path) if Path(path).exists() else {}
    users[name] = (role, _hasher.hash(password))
    text = "".join(f"{n} {r} {h}\n" for n, (r, h) in users.items())
    write_private(path, text)
