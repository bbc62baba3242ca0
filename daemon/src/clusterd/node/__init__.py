"""The asyncio node: composes transport, membership/config cores, control socket and
logging into one daemon (edge code; decisions stay in the pure cores)."""
