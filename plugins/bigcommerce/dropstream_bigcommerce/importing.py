"""Reading orders: one order completely (for a webhook), and the polling sweep.

One order is one call: ``GET /v2/orders/{id}`` with
``include=consignments.line_items&consignment_structure=object``
returns the order with its consignments and every order product in them. Only when a store
does not embed them are the ``/products`` and ``/shipping_addresses`` lists read (every page),
so an order is read completely or not at all. An answer too large to read at once (thousands
of lines: about 1.4 kB each) is asked for again without the lines, which are then read from
``/products`` 250 at a time; the sweep does the same for a page of orders.

The sweep lists orders by ``date_modified`` ascending from the cursor, the same includes on the
list (so a page of up to 250 orders costs one call), without a status filter: orders at the
monitored status are imported and cancelled ones (status 5) come back as ``cancelled`` so the
core sees cancellations. The cursor is the last ``date_modified`` seen; each sweep starts a
little before it (:data:`OVERLAP`) because BigCommerce's dates have whole seconds and an order
committed while a page was read must not be skipped. The core de-duplicates what overlaps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dropstream.connectors.base import RemoteNotFound, TransientError, UnreadableOrderError
from dropstream.connectors.types import OrderData, OrderPage, UnreadableOrder
from dropstream_bigcommerce import hooks
from dropstream_bigcommerce.client import TOO_LARGE, V2_PAGE, BigCommerceClient
from dropstream_bigcommerce.mapping import (
    MappingError,
    embedded_consignments,
    embeds_every_line,
    integer,
    order_data,
    parse_date,
    rfc2822,
)
from dropstream_bigcommerce.schemas import CANCELLED
from dropstream_bigcommerce.status_checks import CheckStore, settle_listed, settle_overdue

log = logging.getLogger(__name__)
INCLUDES = {"include": "consignments.line_items", "consignment_structure": "object"}
OVERLAP = timedelta(seconds=60)
#: Without a ``backfill_from`` setting, the first sweep starts this far back.
DEFAULT_BACKFILL = timedelta(days=7)


def fetch_order(
    client: BigCommerceClient, settings: dict[str, Any], external_id: str
) -> OrderData | None:
    """The order if it is at the monitored status (or cancelled), else None.

    :raises RemoteNotFound: no such order, or it was deleted (archived) in the store.
    :raises UnreadableOrderError: it cannot be mapped.
    """
    try:
        order_id = integer(external_id, "order id")
    except MappingError:
        raise RemoteNotFound(f"{external_id!r} is not a BigCommerce order id") from None
    order = _without_lines_if_too_large(client, f"/v2/orders/{order_id}", {})
    if not isinstance(order, dict):
        raise UnreadableOrderError(
            UnreadableOrder(
                str(order_id), str(order_id), "order: BigCommerce returned no order object", {}
            )
        )
    if order.get("is_deleted") is True:
        # "Delete" in BigCommerce archives: the order still reads, but it is gone for the
        # merchant and must never ship.
        raise RemoteNotFound(f"BigCommerce order {order_id} was deleted (it is in the archive).")
    return _read(client, settings, order)


def fetch_orders_by_id(
    client: BigCommerceClient, settings: dict[str, Any], external_ids: Sequence[str]
) -> dict[str, OrderData | UnreadableOrder | None]:
    """Several orders in one list call per span of ids: ``GET /v2/orders`` with ``min_id`` and
    ``max_id`` and the lines embedded (a flash sale's orders have neighbouring ids). A span
    covers at most a page's worth of ids, so one page holds every order in it.

    Orders the list leaves out (archived ones: lists omit them; ids that are no numbers) are
    left out here too, for ``fetch_order`` to read alone and say what became of them."""
    wanted = {}
    for external_id in external_ids:
        try:
            wanted[integer(external_id, "order id")] = external_id
        except MappingError:
            continue
    found: dict[str, OrderData | UnreadableOrder | None] = {}
    for low, high in _spans(sorted(wanted), V2_PAGE):
        rows = _without_lines_if_too_large(
            client, "/v2/orders", {"min_id": low, "max_id": high, "sort": "id:asc", "limit": V2_PAGE}
        )
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or row.get("is_deleted") is True:
                continue
            row_id = row.get("id")
            external_id = wanted.get(row_id) if isinstance(row_id, int) else None
            if external_id is None:
                continue  # a neighbour nobody asked for
            try:
                found[external_id] = _read(client, settings, row)
            except UnreadableOrderError as error:
                found[external_id] = error.order
    return found


def _spans(ids: list[int], width: int) -> list[tuple[int, int]]:
    """Sorted ids grouped into ``(low, high)`` spans of at most ``width`` consecutive ids."""
    spans: list[tuple[int, int]] = []
    for order_id in ids:
        if spans and order_id - spans[-1][0] < width:
            spans[-1] = (spans[-1][0], order_id)
        else:
            spans.append((order_id, order_id))
    return spans


def _without_lines_if_too_large(
    client: BigCommerceClient, path: str, params: dict[str, Any]
) -> Any:
    """``GET path`` with the lines embedded, or without them when that answer is too large
    (:func:`_read` then reads each order's products page by page)."""
    try:
        return client.get(path, {**INCLUDES, **params})
    except TransientError as error:
        if error.code != TOO_LARGE:
            raise
        log.info("BigCommerce store %s: %s too large with its lines; reading them by page",
                 client.store_hash, path)
        return client.get(path, params)


def _read(
    client: BigCommerceClient, settings: dict[str, Any], order: dict[str, Any]
) -> OrderData | None:
    external_id = str(order.get("id", "?"))
    try:
        status_id = integer(order.get("status_id"), "status_id")
    except MappingError as error:
        # Whether it is at the monitored status cannot be told: keep it visible, never drop it.
        raise UnreadableOrderError(
            UnreadableOrder(external_id, external_id, str(error), order)
        ) from None
    if status_id != settings["monitored_status_id"] and status_id != CANCELLED:
        return None
    try:
        consignments = embedded_consignments(order)
        if consignments is not None:
            data = order_data(order)
            if status_id == CANCELLED or (data.lines and embeds_every_line(order, consignments)):
                return data
            # An order always has products: none embedded means they were left out, fewer
            # units than the order counts that a line is in no consignment; read them all.
        if status_id == CANCELLED:
            return _cancelled(order)  # nothing to read: the core only needs to recognise it
        order_id = integer(order.get("id"), "id")
        products = [p for page in client.v2_pages(f"/v2/orders/{order_id}/products") for p in page]
        addresses = [
            a for page in client.v2_pages(f"/v2/orders/{order_id}/shipping_addresses") for a in page
        ]
        return order_data(
            {**order, "consignments": None, "products": products, "shipping_addresses": addresses},
            products=products,
            shipping_addresses=addresses,
        )
    except MappingError as error:
        if status_id == CANCELLED:
            try:
                return _cancelled(order)
            except MappingError:
                pass
        raise UnreadableOrderError(
            UnreadableOrder(external_id, external_id, str(error), order)
        ) from None


def _cancelled(order: dict[str, Any]) -> OrderData:
    """A cancelled order the core only needs to recognise: its id and dates."""
    order_id = str(integer(order.get("id"), "id"))
    return OrderData(
        external_id=order_id,
        number=order_id,
        status_code=str(CANCELLED),
        placed_at=parse_date(order.get("date_created"), "date_created"),
        updated_at=parse_date(order.get("date_modified"), "date_modified"),
        lines=(),
        cancelled=True,
        raw=order,
    )


def set_status(client: BigCommerceClient, external_id: str, status_id: int) -> None:
    """Only ``status_id`` is sent: a PUT with product lines would clear their discounts."""
    client.put(f"/v2/orders/{integer(external_id, 'order id')}", {"status_id": status_id})


# ------------------------------------------------------------------------------------------------
# The polling sweep
# ------------------------------------------------------------------------------------------------


def _cursor(cursor: str | None, settings: dict[str, Any]) -> tuple[datetime, int, bool]:
    """``(since, page, continuing)``: a new sweep starts at ``since``; a continuation reads
    ``page`` of the same query."""
    if cursor:
        try:
            state = json.loads(cursor)
            return (
                parse_date(state["since"], "cursor"),
                int(state.get("page", 1)),
                bool(state.get("page")),
            )
        except (ValueError, KeyError, TypeError, MappingError):
            log.warning("unreadable BigCommerce cursor %r; starting from the backfill date", cursor)
    backfill = settings.get("backfill_from")
    if backfill:
        return parse_date(str(backfill), "backfill_from"), 1, True  # exactly from there
    return datetime.now(UTC) - DEFAULT_BACKFILL, 1, True


def _encode(since: datetime, page: int | None = None) -> str:
    state: dict[str, Any] = {"since": since.astimezone(UTC).isoformat()}
    if page:
        state["page"] = page
    return json.dumps(state)


def fetch_orders(
    client: BigCommerceClient,
    settings: dict[str, Any],
    cursor: str | None,
    connector: Any,
    checks: CheckStore,
) -> OrderPage:
    since, page, continuing = _cursor(cursor, settings)
    if not continuing:
        hooks.reactivate(client, connector)  # a sweep also repairs hooks BigCommerce switched off
        settle_overdue(client, settings, checks, INCLUDES)
    query_from = since if continuing else since - OVERLAP
    body = _without_lines_if_too_large(
        client,
        "/v2/orders",
        {
            "min_date_modified": rfc2822(query_from),
            "sort": "date_modified:asc",
            "page": page,
            "limit": V2_PAGE,
        },
    )
    rows = body if isinstance(body, list) else []
    settle_listed(client, settings, checks, rows)  # statuses after our shipments, no extra read
    orders: list[OrderData] = []
    unreadable: list[UnreadableOrder] = []
    latest = since
    for row in rows:
        if not isinstance(row, dict):
            continue
        try:
            modified = parse_date(row.get("date_modified"), "date_modified")
            latest = max(latest, modified)
        except MappingError:
            modified = None
        if row.get("is_deleted") is True:
            continue  # archived ("deleted"): lists leave these out; never import one
        try:
            data = _read(client, settings, row)
        except UnreadableOrderError as error:
            unreadable.append(error.order)
            continue
        if data is not None:
            orders.append(data)
    if len(rows) >= V2_PAGE:
        # A full page: more follow. Continue from the last date seen, or, when a whole page
        # shares one second, with the next page of the same query.
        next_cursor = _encode(latest, 1) if latest > query_from else _encode(query_from, page + 1)
        return OrderPage(tuple(orders), next_cursor, more=True, unreadable=tuple(unreadable))
    return OrderPage(tuple(orders), _encode(latest), more=False, unreadable=tuple(unreadable))
