"""Imports every model module so SQLAlchemy's metadata (and Alembic) sees all tables.

Plugin tables belong to the same migration history, so every installed plugin's models are
imported too, through the ``dropstream.models`` entry-point group (found, never named: the core
imports no plugin), whether or not the plugin is enabled.
"""

from importlib.metadata import entry_points

from dropstream.alerts import models as _alerts  # noqa: F401
from dropstream.catalog import models as _catalog  # noqa: F401
from dropstream.console import models as _console  # noqa: F401
from dropstream.fulfillment import models as _fulfillment  # noqa: F401
from dropstream.inventory import models as _inventory  # noqa: F401
from dropstream.jobs import models as _jobs  # noqa: F401
from dropstream.orders import models as _orders  # noqa: F401
from dropstream.stores import models as _stores  # noqa: F401
from dropstream.tenants import models as _tenants  # noqa: F401

for _entry_point in sorted(entry_points(group="dropstream.models"), key=lambda e: e.name):
    _entry_point.load()
