"""Adapters: one module per external system (git, tmux, forges, llm), each behind a small protocol."""
