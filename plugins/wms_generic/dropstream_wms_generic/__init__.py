"""DropStream's generic WMS warehouse connector (a plugin, installed as its own distribution)."""
