"""Forges: where pull requests, reviews and check results live (GitHub, or the embedded local forge).

The capability protocols and value types are in :mod:`coditect_cli.forge.base`; choosing a forge and finding a
token in :mod:`coditect_cli.forge.select`. Importing this package imports neither PyGithub nor git.
"""

from __future__ import annotations

from coditect_cli.forge.base import (
    Check,
    Forge,
    ForgeRepo,
    Merged,
    Opened,
    PrDetails,
    ProposalSpec,
    PullRequest,
    Release,
    Review,
)

__all__ = [
    "Check",
    "Forge",
    "ForgeRepo",
    "Merged",
    "Opened",
    "PrDetails",
    "ProposalSpec",
    "PullRequest",
    "Release",
    "Review",
]
