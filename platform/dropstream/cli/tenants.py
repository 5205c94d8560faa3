"""``providers``, ``merchants``, ``users`` and ``api-keys``: tenants and their access."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from dropstream.cli.errors import service_errors
from dropstream.extensions import db
from dropstream.tenants import services
from dropstream.tenants.models import Merchant, Provider, Role, User

providers = AppGroup("providers", help="Fulfillment providers (3PLs): the top-level tenants.")
merchants = AppGroup("merchants", help="Merchants: a provider's clients, each with its stores.")
users = AppGroup("users", help="People who sign in to the console or the API.")
api_keys = AppGroup("api-keys", help="Bearer keys for the REST API, each acting as one user.")


def _provider(slug: str) -> Provider:
    provider = db.session.scalar(select(Provider).where(Provider.slug == slug))
    if provider is None:
        raise click.ClickException(f"No provider with slug {slug!r}.")
    return provider


@providers.command("create")
@click.argument("name")
@click.option("--slug", help="Short identifier used by the other commands. Default: from NAME.")
def create_provider(name: str, slug: str | None) -> None:
    """Create the provider NAME."""
    with service_errors():
        provider = services.create_provider(db.session, name, slug)
        db.session.commit()
    click.echo(f"Created provider {provider.name!r}: slug {provider.slug}, id {provider.id}.")


@merchants.command("create")
@click.option("--provider", "provider_slug", required=True, metavar="SLUG",
              help="The provider the merchant is a client of.")
@click.option("--contact-email", help="Who to write to about this merchant's orders.")
@click.argument("name")
def create_merchant(provider_slug: str, contact_email: str | None, name: str) -> None:
    """Create the merchant NAME at a provider."""
    provider = _provider(provider_slug)
    with service_errors():
        merchant = services.create_merchant(db.session, provider, name, contact_email)
        db.session.commit()
    click.echo(f"Created merchant {merchant.name!r} at {provider.slug}: id {merchant.id}.")


@users.command("create")
@click.option("--provider", "provider_slug", required=True, metavar="SLUG",
              help="The provider the user belongs to.")
@click.option("--merchant", "merchant_id", type=int, metavar="ID",
              help="The merchant a merchant user is limited to (merchant roles only).")
@click.option("--role", required=True, type=click.Choice([role.value for role in Role]),
              help="provider_* roles see every merchant of the provider; merchant_* roles one.")
@click.option("--name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of prompting.")
@click.argument("email")
def create_user(provider_slug: str, merchant_id: int | None, role: str, name: str,
                password_stdin: bool, email: str) -> None:
    """Create the user EMAIL. The password is prompted for (twice) unless --password-stdin."""
    provider = _provider(provider_slug)
    merchant = None
    if merchant_id is not None:
        merchant = db.session.get(Merchant, merchant_id)
        if merchant is None or merchant.provider_id != provider.id:
            raise click.ClickException(f"Provider {provider.slug!r} has no merchant {merchant_id}.")
    password = _read_password(password_stdin)
    with service_errors():
        user = services.create_user(db.session, provider=provider, email=email, role=Role(role),
                                    password=password, merchant=merchant, name=name)
        db.session.commit()
    scope = f"merchant {merchant.id}" if merchant else f"provider {provider.slug}"
    click.echo(f"Created user {user.email} ({user.role.value}, {scope}): id {user.id}.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("--password-stdin: standard input has no password.")
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@api_keys.command("create")
@click.option("--user", "email", required=True, metavar="EMAIL", help="The user the key acts as.")
@click.option("--name", default="cli", show_default=True, help="What the key is for.")
def create_api_key(email: str, name: str) -> None:
    """Create an API key and print it. It is shown this once: only its hash is stored."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"No user with e-mail {email!r}.")
    with service_errors():
        key, plaintext = services.issue_api_key(db.session, user, name)
        db.session.commit()
    # The key alone on standard output (scripts capture it); the advice on standard error.
    click.echo(plaintext)
    click.echo(f"API key {key.prefix}… for {user.email}: store it now, it cannot be shown again.",
               err=True)
