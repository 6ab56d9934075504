"""The manifest's ``autopilot:`` and ``reactions:`` sections (see :mod:`coditect_cli.domain.autopilot`).

Kept apart from :mod:`coditect_cli.domain.manifest` only so that the autopilot's vocabulary (event kinds,
actions) has one home; the manifest model embeds these models.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EventKind = Literal[
    "gate_failed",
    "pr_left_out",
    "conflict_predicted",
    "changes_requested",
    "review_comment",
    "ci_failed",
    "behind_integration",
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "gate_failed",
    "pr_left_out",
    "conflict_predicted",
    "changes_requested",
    "review_comment",
    "ci_failed",
    "behind_integration",
)
ReactionAction = Literal["send-to-agent", "notify", "none"]


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Reaction(_Cfg):
    """What the autopilot does when an event's condition holds.

    It fires when the condition is first seen, then again every ``interval`` seconds while the condition
    persists, at most ``retries`` more times; once it has fired ``escalate_after`` times with the condition
    still there it is escalated: reported in the syncs and the dashboard and recorded as a blocker.
    """

    action: ReactionAction = "send-to-agent"
    retries: int = Field(default=3, ge=0, le=100, strict=True)
    interval: int = Field(
        default=900, ge=0, le=7 * 86400, strict=True, description="Seconds between two firings."
    )
    escalate_after: int = Field(default=3, ge=1, le=100, strict=True)


DEFAULT_REACTION = Reaction()


class AutopilotConfig(_Cfg):
    """How ``coditect autopilot`` drives the phase."""

    max_working: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        strict=True,
        description="Agents working at once (default: from the machine's cores and memory).",
    )
    stagger: float = Field(
        default=5.0, ge=0, le=3600, allow_inf_nan=False, description="Seconds between two dispatches."
    )
    retries: int = Field(
        default=3,
        ge=0,
        le=100,
        strict=True,
        description="Times a task claimed done but not verified is sent back.",
    )
    backoff: float = Field(
        default=30.0,
        ge=0,
        le=86400,
        allow_inf_nan=False,
        description="First backoff in seconds (doubles each time).",
    )
    poll: float = Field(
        default=10.0, ge=0.05, le=3600, allow_inf_nan=False, description="Seconds between two passes."
    )
    stuck_after: int = Field(
        default=3600,
        ge=1,
        le=7 * 86400,
        strict=True,
        description="Seconds an agent may work on one task without finishing before it is reported stuck.",
    )
    checkpoint_cutoff: str | None = Field(
        default=None,
        description="HH:MM (local time): on a checkpoint's day, run it then with the PRs ready so far.",
    )
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="Hard stop for the phase's spending on the built-in agent: no task is dispatched past it.",
    )

    @field_validator("checkpoint_cutoff")
    @classmethod
    def _cutoff(cls, value: str | None) -> str | None:
        if value is not None:
            m = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
            if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
                raise ValueError(f"{value!r} is not a time of day such as 16:30")
        return value


def default_max_working(cores: int, memory_gb: float) -> int:
    """Agents a machine holds at once: about 2 GB per Claude Code session and two per core, at least one."""
    return max(1, min(int(memory_gb // 2), cores * 2))
