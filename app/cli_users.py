"""`backprop user ...`: list, change role or password, delete, and one-time reset links."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

USER_EPILOG = """\
examples:
  backprop user list --role instructor
  echo 'a long password' | backprop user create prof --role instructor --password-stdin
  backprop user set-role ada instructor
  echo 'a new password' | backprop user set-password ada --password-stdin
  backprop user reset-link ada --base-url https://learn.example.org/backprop
  backprop user delete ada --yes
"""


def _error(message: str) -> None:
    print(f"backprop user: error: {message}", file=sys.stderr)


@contextmanager
def _session() -> Iterator[Any]:
    """A session on the configured database, migrated to head first (as the server does)."""
    from .config import get_settings
    from .db import Database, upgrade

    db = Database.open(get_settings().resolved_database_url())
    try:
        upgrade(db.engine)
        with db.session() as session:
            yield session
    finally:
        db.close()


def read_password(args: argparse.Namespace, username: str) -> str | None:
    """The password piped in on stdin (never argv), checked like a registration; None (with
    the reason printed) when it is missing or breaks the rules."""
    from .accounts import service

    if not args.password_stdin:
        _error("pass --password-stdin and pipe the password in (it never goes on the command line)")
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    problem = service.credential_problem(username, password)
    if problem:
        _error(problem)
        return None
    return password


def cmd_list(args: argparse.Namespace) -> int:
    """Print every account (or one role's): id, username, role, created."""
    from .accounts import admin

    with _session() as session:
        users = admin.list_users(session, role=args.role)
        print(f"{'id':>6}  {'username':<32}  {'role':<10}  created (UTC)")
        for user in users:
            created = user.created_at.strftime("%Y-%m-%d %H:%M")
            print(f"{user.id:>6}  {user.username:<32}  {user.role:<10}  {created}")
    print(f"{len(users)} user(s)", file=sys.stderr)
    return 0


def cmd_set_role(args: argparse.Namespace) -> int:
    from .accounts import admin

    with _session() as session:
        try:
            user = admin.set_role(session, username=args.name, role=args.role)
        except admin.NoSuchUser as exc:
            _error(str(exc))
            return 1
        print(f"{user.username!r} is now {user.role}")
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    from .accounts import admin

    password = read_password(args, args.name)
    if password is None:
        return 2
    with _session() as session:
        try:
            user = admin.set_password(session, username=args.name, password=password)
        except admin.NoSuchUser as exc:
            _error(str(exc))
            return 1
        print(f"new password set for {user.username!r}; their sessions and tokens are revoked")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete an account and everything of theirs, after asking (unless --yes)."""
    from .accounts import admin

    with _session() as session:
        if not _exists(session, args.name):
            _error(f"no user called {args.name!r}")
            return 1
        if not args.yes and not _confirm(
            f"Delete {args.name!r} and all of their attempts, progress and sessions? [y/N] "
        ):
            print("nothing deleted", file=sys.stderr)
            return 1
        try:
            user = admin.delete_user(session, username=args.name)
        except admin.NoSuchUser as exc:
            _error(str(exc))
            return 1
        print(f"deleted {user.role} {user.username!r} (id {user.id})")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    """Create a learner or instructor; the password is read from stdin (never from argv)."""
    from .accounts import service

    if not args.password_stdin:
        print("error: pass --password-stdin and pipe the password in", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    problem = service.credential_problem(args.name, password)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with _session() as session:
        try:
            user = service.create_user(
                session, username=args.name, password=password, role=args.role
            )
        except service.UsernameTaken:
            print(f"error: the username {args.name!r} is taken", file=sys.stderr)
            return 1
        print(f"created {user.role} {user.username!r} (id {user.id})")
    return 0


def _exists(session: Any, name: str) -> bool:
    from .accounts import service

    return service.get_user_by_name(session, username=name) is not None


def _confirm(question: str) -> bool:
    """Ask on stderr, read the answer from stdin; no answer (end of input) is a no."""
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print("\nno answer on standard input; pass --yes to delete without asking", file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")


def cmd_reset_link(args: argparse.Namespace) -> int:
    """Print a one-time URL, valid for an hour, where the user sets a new password."""
    from .accounts import admin
    from .config import get_settings

    settings = get_settings()
    base = (args.base_url or settings.public_url or "").rstrip("/")
    if not base:
        base = f"http://127.0.0.1:8000{settings.root_path}"
        print(
            f"(no --base-url or PUBLIC_URL: the link assumes {base}; set PUBLIC_URL to the "
            "address learners use)",
            file=sys.stderr,
        )
    with _session() as session:
        try:
            token, expires_at = admin.create_reset_link(session, username=args.name)
        except admin.NoSuchUser as exc:
            _error(str(exc))
            return 1
    print(f"{base}/reset/{token}")
    print(
        f"works once, until {expires_at:%Y-%m-%d %H:%M} UTC; using it signs {args.name!r} out "
        "everywhere (any earlier link of theirs no longer works)",
        file=sys.stderr,
    )
    return 0


def add_user_commands(sub: argparse._SubParsersAction) -> None:
    """`backprop user create|list|set-role|set-password|delete|reset-link`."""
    roles = ["learner", "instructor"]
    user = sub.add_parser(
        "user",
        help="manage accounts: create, list, set-role, set-password, delete, reset-link",
        epilog=USER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_sub.add_parser("create", help="create a learner or an instructor")
    create.add_argument("name", help="3-32 letters, digits, dots, dashes or underscores")
    create.add_argument(
        "--role",
        choices=roles,
        default="learner",
        help="(default: learner)",
    )
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(func=cmd_create)

    listing = user_sub.add_parser("list", help="list accounts (id, username, role, created)")
    listing.add_argument("--role", choices=roles, help="only this role (default: every role)")
    listing.set_defaults(func=cmd_list)

    role = user_sub.add_parser("set-role", help="make an account a learner or an instructor")
    role.add_argument("name", help="the username (any case)")
    role.add_argument("role", choices=roles)
    role.set_defaults(func=cmd_set_role)

    password = user_sub.add_parser(
        "set-password", help="set a new password (read from stdin); signs the user out everywhere"
    )
    password.add_argument("name", help="the username (any case)")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    password.set_defaults(func=cmd_set_password)

    delete = user_sub.add_parser(
        "delete", help="delete an account and all of its data (asks first unless --yes)"
    )
    delete.add_argument("name", help="the username (any case)")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=cmd_delete)

    link = user_sub.add_parser(
        "reset-link",
        help="print a one-time URL (valid 1 hour) where the user sets a new password",
        description="Print a one-time URL where the user sets a new password: no mail server "
        "needed, send it to them yourself. It works once, for an hour; using it revokes the "
        "user's sessions and API tokens.",
    )
    link.add_argument("name", help="the username (any case)")
    link.add_argument(
        "--base-url",
        metavar="URL",
        help="the site's address as learners reach it (default: PUBLIC_URL, else "
        "http://127.0.0.1:8000 plus ROOT_PATH)",
    )
    link.set_defaults(func=cmd_reset_link)
