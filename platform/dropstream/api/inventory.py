"""Stock per store: the warehouse's levels for the store's merchant, and the per-SKU quantities
computed for the store and pushed to it (with why an item was skipped)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import false

from dropstream.api.auth import current_scope
from dropstream.api.common import Text
from dropstream.api.listings import like
from dropstream.api.pagination import PageArgs, page_schema, paginate
from dropstream.api.stores import load_store
from dropstream.extensions import db
from dropstream.inventory.models import InventoryItem, ItemState, StockLevel

blp = Blueprint("inventory", __name__, url_prefix="/api/v1/stores/<id:store_id>",
                description="Warehouse stock levels and the store's pushed inventory.")


class StockLevelSchema(Schema):
    id = fields.Integer()
    warehouse_id = fields.Integer()
    warehouse_sku = fields.String()
    quantity = fields.Integer()
    source_updated_at = fields.DateTime(metadata={"description": "The warehouse's own timestamp."})
    updated_at = fields.DateTime()


class InventoryItemSchema(Schema):
    id = fields.Integer()
    store_id = fields.Integer()
    store_sku = fields.String()
    available = fields.Integer(metadata={"description": "Last computed: stock less buffer and "
                                                        "quantities not yet at the warehouse."})
    pushed_quantity = fields.Integer(allow_none=True)
    pushed_at = fields.DateTime(allow_none=True)
    state = fields.Enum(ItemState, by_value=True)
    reason = fields.String(allow_none=True, metadata={"description": "e.g. tracking_off"})
    message = fields.String(allow_none=True)


class SkuArgs(PageArgs):
    sku = Text(255, metadata={"description": "Part of the SKU."})


class ItemArgs(SkuArgs):
    state = fields.Enum(ItemState, by_value=True)


@blp.route("/stock-levels")
class StoreStockLevels(MethodView):
    @blp.arguments(SkuArgs, location="query")
    @blp.response(200, page_schema(StockLevelSchema))
    def get(self, args: dict[str, Any], store_id: int) -> dict[str, Any]:
        """List the warehouse's stock levels for this store's merchant"""
        store = load_store(store_id)
        statement = current_scope().select(
            StockLevel, StockLevel.merchant_id == store.merchant_id,
            StockLevel.warehouse_id == store.warehouse_id if store.warehouse_id else false(),
        ).order_by(StockLevel.warehouse_sku)
        if args.get("sku"):
            statement = statement.where(StockLevel.warehouse_sku.ilike(like(args["sku"]), escape="\\"))
        return paginate(db.session, statement, args)


@blp.route("/inventory-items")
class StoreInventoryItems(MethodView):
    @blp.arguments(ItemArgs, location="query")
    @blp.response(200, page_schema(InventoryItemSchema))
    def get(self, args: dict[str, Any], store_id: int) -> dict[str, Any]:
        """List the store's inventory items (what was pushed, skipped or failed)"""
        store = load_store(store_id)
        statement = current_scope().select(InventoryItem, InventoryItem.store_id == store.id).order_by(
            InventoryItem.store_sku)
        if args.get("sku"):
            statement = statement.where(InventoryItem.store_sku.ilike(like(args["sku"]), escape="\\"))
        if "state" in args:
            statement = statement.where(InventoryItem.state == args["state"])
        return paginate(db.session, statement, args)
