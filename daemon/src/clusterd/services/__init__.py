"""The services layer: reports, coordinator decisions, the local executor, control ops.

``model`` (wire data, pure), ``merge`` (reports -> rows -> placement snapshot, pure),
``coordinator`` (one cycle of the coordinator, pure), ``executor`` (agents, edge) with
``agentset`` (a service's agents and status schedules),
``store`` (admin state file, edge), ``ops`` (control operations). The node glue is
``clusterd.node.services_glue``.
"""
