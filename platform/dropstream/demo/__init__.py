"""``dropstream demo``: the whole loop on one machine, with the connectors' sandboxes.

The core orchestrates (:mod:`.runtime`) without importing a plugin: through the ``demo_*``
hooks each installed connector plugin starts its sandbox, connects a warehouse or stores to it,
and places orders in it. The catalogue and the traffic are the core's (:mod:`.catalog`,
:mod:`.traffic`), so every demo shows the same flows and holds.
"""
