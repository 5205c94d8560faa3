"""The demo's products and shipping methods: chosen to show every flow and every common hold."""

from __future__ import annotations

from dropstream.demo_support import DemoCatalog, DemoProduct

TEE = DemoProduct("DS-TEE-BLK", "DropStream T-shirt, black", "24.00", warehouse_sku="WH-TEE-001", stock=150)
MUG = DemoProduct("DS-MUG", "Enamel mug", "12.50", stock=120)
CAP = DemoProduct("DS-CAP", "Canvas cap (inventory not tracked)", "18.00", tracked=False, stock=60)
GIFT_BOX = DemoProduct("DS-GIFTBOX", "Gift box: a T-shirt and two mugs", "45.00",
                       components={"WH-TEE-001": 1, "DS-MUG": 2})
ENGRAVING = DemoProduct(None, "Custom engraving plate (no SKU)", "30.00", stock=0)

#: Shoppers mostly pick mapped methods; "Overnight Air" has no shipping rule on purpose.
UNMAPPED_METHOD = "Overnight Air"
CATALOG = DemoCatalog(
    products=(TEE, MUG, CAP, GIFT_BOX, ENGRAVING),
    shipping_methods={"Free Shipping": "GROUND", "Express Delivery": "EXPRESS", UNMAPPED_METHOD: None},
)
