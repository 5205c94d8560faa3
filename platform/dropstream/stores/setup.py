"""Set-up checks: ask a store's (and its warehouse's) connector to check itself."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from dropstream.connectors.base import ConnectorError
from dropstream.connectors.types import SetupCheck
from dropstream.stores.connections import store_connector, warehouse_connector
from dropstream.stores.models import Store, StoreState


def run_setup_checks(session: Session, store: Store) -> list[SetupCheck]:
    """Run the storefront connector's checks, then the linked warehouse's.

    A store still setting up becomes active once every required check passes; a failing check
    never deactivates a running store (the pipeline's own errors do that).
    """
    checks = _checks(lambda: store_connector(store).setup_checks(), "")
    if store.warehouse is None:
        checks.append(SetupCheck("warehouse", "Linked to a warehouse", False,
                                 "The store is not linked to a warehouse.",
                                 "Choose the warehouse that fulfils this store's orders."))
    else:
        checks += _checks(lambda: warehouse_connector(store.warehouse, store).setup_checks(), "warehouse.")
    if store.state is StoreState.SETTING_UP and all(c.passed for c in checks if c.required):
        store.state = StoreState.ACTIVE
        store.state_reason = None
    return checks


def _checks(run, prefix: str) -> list[SetupCheck]:  # type: ignore[no-untyped-def]
    try:
        results = list(run())
    except ConnectorError as error:
        return [SetupCheck(f"{prefix}reachable", "The remote system answers", False, error.message,
                           "Check the address and credentials, then run the checks again.")]
    if not prefix:
        return results
    # A warehouse check's field belongs to the warehouse's form, except the store's own account
    # at the warehouse (warehouse_account.*), which the store's form holds.
    return [replace(c, key=prefix + c.key,
                    field=c.field if c.field.startswith("warehouse_account.") else "")
            for c in results]
