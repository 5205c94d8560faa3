"""One list shape for every collection: ``{"items": [...], "pagination": {...}}``.

``page`` starts at 1; ``per_page`` defaults to 50 and is capped at 200, so no request can ask the
database for an unbounded result. ``total`` counts the whole filtered collection.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
#: Deep pages are a scan; past this, filter instead.
MAX_PAGE = 10_000


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, MAX_PAGE))
    per_page = fields.Integer(load_default=DEFAULT_PER_PAGE, validate=validate.Range(1, MAX_PER_PAGE))


class PaginationSchema(Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


@cache
def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The list envelope for ``item_schema`` (one class per item schema, named for the doc)."""
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item_schema)),
        "pagination": fields.Nested(PaginationSchema),
        "__doc__": f"A page of {item_schema.__name__.removesuffix('Schema')} items.",
    })


def paginate(session: Session, statement: Select[Any], args: dict[str, Any]) -> dict[str, Any]:
    """Run ``statement`` (already scoped, filtered and ordered) for one page."""
    page, per_page = args.get("page", 1), args.get("per_page", DEFAULT_PER_PAGE)
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    items = session.scalars(statement.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return {
        "items": items,
        "pagination": {"page": page, "per_page": per_page, "total": total,
                       "pages": (total + per_page - 1) // per_page},
    }
