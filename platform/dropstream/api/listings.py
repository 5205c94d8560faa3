"""Listings of a store: how each store SKU is known at the warehouse (one SKU, or a bundle of
components), with CSV import and export. Every change releases orders held for a missing
listing by itself."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import or_
from sqlalchemy.orm import selectinload

from dropstream.api.auth import current_scope
from dropstream.api.common import Sku, Text
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.api.stores import load_store
from dropstream.catalog import services
from dropstream.catalog.models import Listing
from dropstream.errors import NotFound, ValidationFailed
from dropstream.extensions import db

blp = Blueprint("listings", __name__, url_prefix="/api/v1/stores/<id:store_id>/listings",
                description="Store SKU → warehouse SKU or bundle; CSV import and export.")

CSV_BODY_DOC = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}}},
}}}


class ComponentSchema(Schema):
    warehouse_sku = Sku(required=True)
    quantity = fields.Integer(strict=True, required=True,
                              validate=validate.Range(1, services.MAX_COMPONENT_QUANTITY))


class ListingSchema(Schema):
    id = fields.Integer(dump_only=True)
    store_id = fields.Integer(dump_only=True)
    store_sku = Sku(required=True)
    warehouse_sku = Sku(metadata={"description": "For a plain listing; omit for a bundle."})
    name = Text(255, load_default="")
    components = fields.List(fields.Nested(ComponentSchema),
                             validate=validate.Length(min=1, max=services.MAX_COMPONENTS),
                             metadata={"description": "For a bundle: one store unit ships as "
                                                      "these quantities of each component."})
    is_bundle = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ListingUpdateSchema(Schema):
    store_sku = Sku()
    warehouse_sku = Sku(metadata={"description": "Replaces the components, if any."})
    name = Text(255)
    components = fields.List(fields.Nested(ComponentSchema),
                             validate=validate.Length(min=1, max=services.MAX_COMPONENTS),
                             metadata={"description": "Replaces warehouse_sku, if any."})


class ListingListArgs(PageArgs):
    sku = Text(255, metadata={"description": "Part of a store or warehouse SKU."})


class ImportResultSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()


def load_listing(store_id: int, listing_id: int) -> tuple[Any, Listing]:
    store = load_store(store_id)
    listing = db.session.scalars(current_scope().select(
        Listing, Listing.id == listing_id, Listing.store_id == store.id)).first()
    if listing is None:
        raise NotFound("listing")
    return store, listing


def like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@blp.route("")
class Listings(MethodView):
    @blp.arguments(ListingListArgs, location="query")
    @blp.response(200, page_schema(ListingSchema))
    def get(self, args: dict[str, Any], store_id: int) -> dict[str, Any]:
        """List a store's listings"""
        store = load_store(store_id)
        statement = current_scope().select(Listing, Listing.store_id == store.id).order_by(
            Listing.store_sku).options(selectinload(Listing.components))
        if args.get("sku"):
            pattern = like(args["sku"])
            statement = statement.where(or_(Listing.store_sku.ilike(pattern, escape="\\"),
                                            Listing.warehouse_sku.ilike(pattern, escape="\\")))
        return paginate(db.session, statement, args)

    @blp.arguments(ListingSchema)
    @blp.response(201, ListingSchema)
    def post(self, data: dict[str, Any], store_id: int) -> Listing:
        """Create a listing

        Give ``warehouse_sku`` for a plain listing, or ``components`` for a bundle.
        """
        listing = services.create_listing(db.session, load_store(store_id), data)
        db.session.commit()
        return listing


@blp.route("/<id:listing_id>")
class ListingItem(MethodView):
    @blp.response(200, ListingSchema)
    def get(self, store_id: int, listing_id: int) -> Listing:
        """Get a listing"""
        return load_listing(store_id, listing_id)[1]

    @blp.arguments(ListingUpdateSchema)
    @blp.response(200, ListingSchema)
    def patch(self, data: dict[str, Any], store_id: int, listing_id: int) -> Listing:
        """Update a listing"""
        store, listing = load_listing(store_id, listing_id)
        services.update_listing(db.session, store, listing, data)
        db.session.commit()
        return listing

    @blp.response(204)
    def delete(self, store_id: int, listing_id: int) -> None:
        """Delete a listing"""
        store, listing = load_listing(store_id, listing_id)
        services.delete_listing(db.session, store, listing)
        db.session.commit()


@blp.route("/import")
class ListingImport(MethodView):
    @blp.doc(**CSV_BODY_DOC)
    @blp.response(200, ImportResultSchema)
    def post(self, store_id: int) -> services.ImportResult:
        """Import listings from CSV

        Send the file as ``text/csv`` or as the ``file`` field of a multipart form. Columns:
        ``store_sku``, ``warehouse_sku``, ``component_sku``, ``component_quantity`` (optional
        ``name``); a bundle takes one row per component. Listings are upserted by store SKU.
        If any row is bad nothing is imported, and the 422 names each bad cell as
        ``rows.<row>.<column>`` (the header is row 1).
        """
        store = load_store(store_id)
        result = services.import_listings_csv(db.session, store, _csv_text())
        db.session.commit()
        return result


@blp.route("/export")
class ListingExport(MethodView):
    @blp.response(200, content_type="text/csv", description="The listings in the import format.")
    def get(self, store_id: int) -> Response:
        """Export listings as CSV"""
        store = load_store(store_id)
        body = services.export_listings_csv(db.session, store)
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="store-{store.id}-listings.csv"'})


def _csv_text() -> str:
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed("Attach the CSV as the 'file' field.",
                                   fields={"file": ["Missing file."]})
        raw = upload.read()
    elif request.mimetype in ("text/csv", "text/plain", "application/csv"):
        raw = request.get_data(cache=False)
    else:
        raise ValidationFailed("Send the CSV as text/csv or as a multipart 'file' field.",
                               fields={"file": ["Missing file."]})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not UTF-8 text; save it as CSV UTF-8.",
                               fields={"file": ["Not UTF-8."]}) from None
