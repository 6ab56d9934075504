"""Use cases: wire the domain to the adapters for one command and return a result value."""
