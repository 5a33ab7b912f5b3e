"""``watchword tenants``: the API keys of a tenant.

A tenant is the id its communications carry (``tenant-acme``). ``create``
prints a new key once: only its hash is stored, so a lost key is revoked and
replaced, never recovered.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

import typer
from rich.table import Table

from shared.aws.tenant_store import TENANT_PATTERN, IssuedKey, TenantStore
from shared.logs import configure as configure_logging
from shared.settings import Settings

app = typer.Typer(help="Manage tenants' API keys.", no_args_is_help=True)

TenantId = Annotated[
    str, typer.Argument(help="The tenant's id, as its communications carry it.")
]


def issue_key(settings: Settings, tenant: str, label: str = "") -> IssuedKey:
    """A new API key for ``tenant`` (the demo uses this too)."""
    if not re.fullmatch(TENANT_PATTERN, tenant):
        raise typer.BadParameter(
            "letters, digits, '_', '.', '-', starting with a letter or digit;"
            " 64 at most",
            param_hint="TENANT_ID",
        )
    return TenantStore(settings).create_key(tenant, label=label)


@app.command()
def create(
    tenant: TenantId,
    label: Annotated[str, typer.Option(help="A note on who holds the key.")] = "",
) -> None:
    """Make a new API key for TENANT_ID and print it (once)."""
    from cli.main import console, load_settings

    configure_logging(logging.WARNING)
    issued = issue_key(load_settings(), tenant, label)
    console.print(
        f"key {issued.key.key_id} for {tenant}; store it now, it is not shown again:"
    )
    # Plain print: no wrapping or markup may touch the token.
    print(issued.token)


@app.command()
def revoke(
    tenant: TenantId,
    key_id: Annotated[
        str | None, typer.Argument(help="The key's id (see `tenants keys`).")
    ] = None,
    all_keys: Annotated[
        bool, typer.Option("--all", help="Revoke every live key of the tenant.")
    ] = False,
) -> None:
    """Revoke a key of TENANT_ID (or all of them); it is refused at once."""
    from cli.main import console, load_settings

    configure_logging(logging.WARNING)
    if (key_id is None) == (not all_keys):
        raise typer.BadParameter("give a KEY_ID or --all, not both")
    store = TenantStore(load_settings())
    if all_keys:
        ids = [k.key_id for k in store.keys(tenant) if k.revoked_at is None]
    else:
        assert key_id is not None
        ids = [key_id]
    revoked = [i for i in ids if store.revoke_key(tenant, i)]
    for i in revoked:
        console.print(f"revoked {i}")
    if not all_keys and not revoked:
        console.print(f"[red]{tenant} has no live key {key_id}[/]")
        raise typer.Exit(1)


@app.command()
def keys(tenant: TenantId) -> None:
    """List the keys of TENANT_ID (ids and dates, never the keys)."""
    from cli.main import console, load_settings

    configure_logging(logging.WARNING)
    table = Table(title=f"API keys of {tenant}")
    for column in ("key id", "label", "created", "revoked"):
        table.add_column(column)
    for key in TenantStore(load_settings()).keys(tenant):
        table.add_row(
            key.key_id,
            key.label,
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    console.print(table)
