"""`review-router users ...` and `review-router keys ...`: accounts and API keys from the shell.

The first admin is made here (`review-router users add alice --role admin`); after that, admins
can also manage accounts and keys on the admin page or through the API.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from service import auth
from service.errors import ServiceError
from service.settings import get_settings
from service.storage import accounts
from service.storage.db import engine_for, transaction, upgrade
from service.storage.tables import utcnow


def _engine() -> Any:
    engine = engine_for(get_settings())
    upgrade(engine)
    return engine


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password to set and whether it was generated (then it is printed once)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise SystemExit("the passwords differ")
        return first, False
    return secrets.token_urlsafe(12), True


def _hash(password: str) -> str:
    problem = auth.password_problem(password)
    if problem is not None:
        raise SystemExit(problem)
    return auth.hash_password(password)


def cmd_users(args: argparse.Namespace) -> int:
    engine = _engine()
    try:
        with transaction(engine) as session:
            if args.action == "list":
                for u in accounts.list_users(session):
                    state = "" if u.active else "  (deactivated)"
                    print(f"{u.username:<24} {u.role:<9} since {u.created_at:%Y-%m-%d}{state}")
                return 0
            if args.action == "add":
                password, generated = _new_password(args)
                accounts.add_user(
                    session, username=args.name, password_hash=_hash(password), role=args.role, now=utcnow()
                )
                print(f"added {args.name} ({args.role})" + (f"; password: {password}" if generated else ""))
                return 0
            user = accounts.find_user(session, username=args.name)
            if user is None:
                raise SystemExit(f"no user named {args.name!r}")
            if args.action == "role":
                accounts.update_user(session, user=user, role=args.role)
            elif args.action == "deactivate":
                accounts.update_user(session, user=user, active=False)
            elif args.action == "activate":
                accounts.update_user(session, user=user, active=True)
            elif args.action == "password":
                password, generated = _new_password(args)
                accounts.update_user(session, user=user, password_hash=_hash(password))
                if generated:
                    print(f"new password: {password}")
            print(f"{args.name}: {args.action} done")
    except ServiceError as exc:
        raise SystemExit(exc.message) from exc
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    engine = _engine()
    with transaction(engine) as session:
        if args.action == "create":
            key, row = accounts.create_api_key(
                session, name=args.name, created_by=None, now=utcnow(), rate_per_minute=args.rate
            )
            print(key)
            print(f"API key {row.id} for {row.name!r}: shown once, store it now", file=sys.stderr)
        elif args.action == "list":
            for k in accounts.list_api_keys(session):
                state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
                rate = "default rate" if k.rate_per_minute is None else f"{k.rate_per_minute}/min"
                print(f"{k.id}  {k.prefix}…  {k.name:<24} {state:<18} {rate:<14} last used {used}")
        else:
            try:
                row = accounts.revoke_api_key(session, key_id=args.name, now=utcnow())
            except ServiceError as exc:
                raise SystemExit(exc.message) from exc
            print(f"revoked {row.id} ({row.name})")
    return 0


def add_commands(sub: Any) -> None:
    """Register `users` and `keys` on the top-level parser's subcommands."""
    users = sub.add_parser("users", help="accounts: add, list, role, password, deactivate, activate")
    users.add_argument("action", choices=["add", "list", "role", "password", "deactivate", "activate"])
    users.add_argument("name", nargs="?", default="")
    users.add_argument("--role", choices=[r.value for r in auth.Role], default=auth.Role.reviewer.value)
    users.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (else prompt or generate)"
    )
    users.set_defaults(func=_needs_name(cmd_users, "list"))

    keys = sub.add_parser("keys", help="applications' API keys: create NAME, list, revoke ID")
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument(
        "name", nargs="?", default="", help="create: the application's name; revoke: the key id"
    )
    keys.add_argument(
        "--rate",
        type=int,
        default=None,
        help="create: outputs the key may post a minute (0: no limit; default: RR_INGEST_RATE_PER_MINUTE)",
    )
    keys.set_defaults(func=_needs_name(cmd_keys, "list"))


def _needs_name(func: Any, without: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        if args.action != without and not args.name:
            raise SystemExit(f"{args.action} needs a name")
        return int(func(args))

    return run
