"""Fencing: fence agents on stdin, methods in order, and the fencing policy.

Modules (decisions are pure, effects at the edges):

* ``state``, ``policy``, ``intents``, ``ops``, ``plan``, ``metadata``, ``redact``: pure.
* ``agent`` (runner), ``methods`` (method executor), ``store`` (intents file), ``runtime``
  (:class:`~clusterd.fencing.runtime.Fencer`, the asyncio adapter): edge.

Nothing is imported here so that pure callers do not load asyncio-based modules.
"""
