"""Presentation: the JSON envelope, rich output for terminals, Markdown reports."""
