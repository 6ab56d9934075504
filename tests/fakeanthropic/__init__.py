"""A fake Anthropic Messages API on 127.0.0.1 (see server.py)."""
