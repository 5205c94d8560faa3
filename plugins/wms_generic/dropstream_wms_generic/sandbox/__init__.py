"""The WMS sandbox: the reference implementation of the generic WMS protocol, as a real HTTP
server for the demo, the integration tests and the benchmarks.

:class:`WmsSandbox` runs it in a thread (``with WmsSandbox() as wms: wms.url``); its admin
methods (add an account, set stock, ship, inject faults, configure pushes) are also served as
JSON under ``/_sandbox/`` for other processes, and ``dropstream sandbox wms`` runs it from the
command line.
"""

from dropstream_wms_generic.sandbox.server import WmsSandbox

__all__ = ["WmsSandbox"]
