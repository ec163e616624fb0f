"""`partnersync saxo`: Saxo signups, cash transfers and the deployment's token."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from partners.saxo.settings import SaxoSettings
from partnersync.config import Settings
from partnersync.context import connect as connect_redis

if TYPE_CHECKING:
    from partners.saxo.auth import SharedToken, StaticToken


def to_json(obj: Any) -> str:
    return msgspec.json.encode(obj).decode()


def _signup(connection: Any, ref: str) -> tuple[str, str]:
    """(ClientKey, SignUpId) of a signup command, by its externalId or its ClientKey."""
    from partnersync import commands, keys

    record = commands.load(connection, ref)
    if record is None:  # a ClientKey: its signup entity is linked to the command it came from
        linked = commands.linked(connection, keys.entity_key("saxo", "signup", ref))
        record = commands.load(connection, linked) if linked else None
    if record is None or record.kind != "signup" or record.result is None:
        raise ValueError(
            f"no accepted signup command for {ref!r} (give its externalId or ClientKey)"
        )
    return record.result["ClientKey"], record.result["SignUpId"]


def cmd_saxo(args: argparse.Namespace, settings: Settings) -> int:
    import base64
    from pathlib import Path

    from partners.saxo import signups
    from schemas.saxo.signups import SIGNUP_DOCUMENT_TYPES, Attachment, AttachmentsRequest

    connection = connect_redis(settings)
    try:
        if args.sub == "options":
            allowed = signups.options(connection, settings, refresh=args.refresh)
            if args.json:
                print(to_json(allowed))
            else:
                for name, values in sorted(allowed.items()):
                    print(f"{name:<28} {', '.join(values)}")
            return 0
        if args.sub == "cash-transfers":
            return _cash_transfers(args, settings)
        client_key, signup_id = _signup(connection, args.signup)
        if args.sub == "attach":
            if args.type not in SIGNUP_DOCUMENT_TYPES:
                print(
                    f"partnersync: --type {args.type!r}; allowed: {', '.join(sorted(SIGNUP_DOCUMENT_TYPES))}",
                    file=sys.stderr,
                )
                return 2
            documents = [
                Attachment(Data=base64.b64encode(Path(f).read_bytes()).decode(), FileName=Path(f).name,
                           DocumentType=args.type, Title=args.title)
                for f in args.files
            ]  # fmt: skip
            signups.attach(connection, settings, signup_id, AttachmentsRequest(Documents=documents))
            print(f"attached {len(documents)} document(s) to signup {signup_id}")
        elif args.sub == "complete":
            return _complete(connection, settings, signup_id, args)
        elif args.sub == "verify":
            print(signups.verify(connection, settings, client_key, args.redirect_url))
        elif args.sub == "pdf":
            Path(args.output).write_bytes(
                signups.onboarding_pdf(connection, settings, client_key, args.type)
            )
            print(f"wrote {args.output}")
        return 0
    except (ValueError, OSError) as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 2


def _complete(connection: Any, settings: Settings, signup_id: str, args: argparse.Namespace) -> int:
    """The complete-application's answer as Saxo gives it: Failed exits 1 with its
    ErrorMessage; the accounts (with AwaitAccountCreation) are printed."""
    import msgspec

    from partners.saxo import signups

    try:
        result = signups.complete(
            connection, settings, signup_id, await_accounts=args.await_account_creation
        )
    except signups.ApplicationFailed as exc:
        print(f"partnersync: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(to_json(msgspec.to_builtins(result)))
        return 0
    status = result.ApplicationStatus or "accepted (Saxo gave no status; follow entities show)"
    print(f"signup {signup_id}: application {status}")
    for account in result.AccountDetails:
        print(
            f"  account {account.AccountType or '?'} {account.CurrencyIsoCode or '?'} {account.Iban or ''}"
        )
    return 0


def _cash_transfers(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from partners.saxo.client import SaxoClient

    params = {
        name: value
        for name, value in (
            ("ExternalReference", args.external_reference), ("AccountKey", args.account_key),
            ("ClientKey", args.client_key), ("FromDateTime", args.from_), ("ToDateTime", args.to),
        )
        if value
    }  # fmt: skip

    async def collect() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as http:
            client = SaxoClient(settings, http, saxo_tokens(settings))
            return [item async for item in client.pages("/atr/v1/partner/cashtransfers", **params)]

    rows = asyncio.run(collect())
    for row in rows:
        if args.json:
            print(to_json(row))
        else:
            print(f"{row.get('TransactionId'):<10} {row.get('TransferStatus'):<11} {row.get('Amount')!s:>12} "
                  f"{row.get('Currency')}  {row.get('FromAccount')} → {row.get('ToAccount')}  {row.get('ExternalReference') or '-'}")  # fmt: skip
    if not args.json:
        print(f"{len(rows)} cash transfers")
    return 0


def saxo_tokens(settings: Settings) -> StaticToken | SharedToken:
    from partners.saxo import auth as saxo_auth

    static = SaxoSettings.of(settings).auth == "static"
    return saxo_auth.provider(settings, None if static else connect_redis(settings))


def cmd_saxo_auth(args: argparse.Namespace, settings: Settings) -> int:
    """Show the deployment's Saxo token (expiries only, never the token), or set the refresh
    token of a new one-time authorization (SAXO_AUTH=code)."""
    import time

    from partners.saxo import auth as saxo_auth

    if SaxoSettings.of(settings).auth == "static":
        if args.refresh_token:  # it would be kept nowhere and used by nothing
            print("partnersync: saxo auth --refresh-token: SAXO_AUTH=static uses SAXO_TOKEN "
                  "only; set SAXO_AUTH=code to use a refresh token", file=sys.stderr)  # fmt: skip
            return 2
        print("SAXO_AUTH=static: the token is SAXO_TOKEN; nothing is kept in Redis")
        return 0
    store = saxo_auth.SaxoToken(connect_redis(settings), settings)
    if args.refresh_token:
        store.store(
            saxo_auth.Token(access_token="", expires_at=0, refresh_token=args.refresh_token)
        )
        print("refresh token stored; the next call obtains an access token with it")
    token = store.load()
    now = time.time()
    if token is None:
        print(
            f"SAXO_AUTH={SaxoSettings.of(settings).auth}: no token yet (the first call obtains one)"
        )
        return 0
    refresh = f"{token.refresh_expires_at - now:.0f} s" if token.refresh_expires_at else "unknown"
    print(
        f"SAXO_AUTH={SaxoSettings.of(settings).auth}: access token expires in {token.expires_at - now:.0f} s; "
        f"refresh token: {'present' if token.refresh_token else 'none'}, expires in {refresh}"
    )
    return 0


def cmd_saxo_login(args: argparse.Namespace, settings: Settings) -> int:
    """The first authorization of SAXO_AUTH=code (partners/saxo/login.py): the operator signs
    in once in a browser; the token is stored for the deployment, never printed."""
    import time
    import webbrowser

    from partners.saxo import auth as saxo_auth
    from partners.saxo import login as saxo_login

    if SaxoSettings.of(settings).auth != "code":
        print(
            f"SAXO_AUTH={SaxoSettings.of(settings).auth}: `saxo login` is for SAXO_AUTH=code "
            "(the Authorization Code grant)",
            file=sys.stderr,
        )
        return 2
    store = saxo_auth.SaxoToken(connect_redis(settings), settings)
    try:
        sign_in = saxo_login.Login(settings)
    except OSError as exc:
        print(
            f"SAXO_REDIRECT_URL={SaxoSettings.of(settings).redirect_url}: cannot listen ({exc})",
            file=sys.stderr,
        )
        return 2
    print("Sign in to Saxo in a browser at:", flush=True)
    print(sign_in.url, flush=True)
    if not args.no_browser:
        webbrowser.open(sign_in.url)
    try:
        token = sign_in.wait(args.timeout)
    except saxo_login.LoginError as exc:
        print(f"saxo login: {exc}", file=sys.stderr)
        return 1
    store.store(token)
    refresh = (
        f"{token.refresh_expires_at - time.time():.0f} s" if token.refresh_expires_at else "unknown"
    )
    print(f"signed in: token stored for this deployment (refresh token expires in {refresh})")
    return 0


def add(sub: Any) -> None:
    saxo = sub.add_parser("saxo", help="Saxo signups and cash transfers").add_subparsers(
        dest="sub", required=True
    )
    so = saxo.add_parser("options", help="signup options (cached)")
    so.add_argument("--refresh", action="store_true")
    so.add_argument("--json", action="store_true")
    sa = saxo.add_parser("attach", help="upload documents to a signup")
    sa.add_argument("signup", help="the signup command's externalId, or its ClientKey")
    sa.add_argument("files", nargs="+")
    sa.add_argument("--type", required=True, help="DocumentType, e.g. ProofOfIdentity")
    sa.add_argument("--title")
    sc = saxo.add_parser("complete", help="all documents are in: process the application now")
    sc.add_argument("signup")
    sc.add_argument(
        "--await-account-creation", action="store_true",
        help="Saxo waits for the accounts and returns them (AwaitAccountCreation)",
    )  # fmt: skip
    sc.add_argument("--json", action="store_true")
    sv = saxo.add_parser(
        "verify", help="start external identity verification; prints the IdentificationUrl"
    )
    sv.add_argument("signup")
    sv.add_argument("--redirect-url", required=True)
    sp = saxo.add_parser("pdf", help="save the onboarding PDF")
    sp.add_argument("signup")
    sp.add_argument("--type", required=True, choices=["Switzerland501", "Switzerland901"])
    sp.add_argument("-o", "--output", required=True)
    sl = saxo.add_parser("cash-transfers", help="list partner cash transfers (all pages)")
    sl.add_argument("--external-reference")
    sl.add_argument("--account-key")
    sl.add_argument("--client-key")
    sl.add_argument("--from", dest="from_", help="FromDateTime (ISO)")
    sl.add_argument("--to", help="ToDateTime (ISO)")
    sl.add_argument("--json", action="store_true")
    for saxo_command in (so, sa, sc, sv, sp, sl):
        saxo_command.set_defaults(func=cmd_saxo)
    st = saxo.add_parser(
        "auth", help="the deployment's Saxo token: expiries, or a new refresh token"
    )
    st.add_argument("--refresh-token", help="the refresh token of a new one-time authorization")
    st.set_defaults(func=cmd_saxo_auth)
    sg = saxo.add_parser(
        "login", help="SAXO_AUTH=code: sign in once in a browser (Authorization Code with PKCE)"
    )
    sg.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    sg.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (300)"
    )
    sg.set_defaults(func=cmd_saxo_login)
