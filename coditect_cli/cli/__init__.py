"""The command line: typer lives here and only here."""
