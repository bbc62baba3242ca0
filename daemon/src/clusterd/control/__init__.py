"""Control socket: protocol (pure), server (asyncio edge), client (used by every CLI)."""
