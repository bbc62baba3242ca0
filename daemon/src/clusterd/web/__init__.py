"""clusterd-web: the web status and control page (its own process; docs/web.md).

The daemon never imports this package (nor aiohttp): it talks to clusterd through the
control socket as a trusted proxy, acting for the logged-in user's role.
"""
