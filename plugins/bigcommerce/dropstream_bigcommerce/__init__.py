"""DropStream's BigCommerce storefront connector (a plugin, installed as its own distribution)."""
