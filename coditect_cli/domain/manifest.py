"""The workstream manifest: typed, frozen models parsed once from ``workstreams/<phase>.yaml``.

Unknown keys are rejected (``extra="forbid"``). Cross-references (streams, repositories, tasks) are checked
by :mod:`coditect_cli.domain.validate`, which also has the file system and git at hand.
"""

from __future__ import annotations

import datetime as _dt
import posixpath
import re
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NewType, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from coditect_cli.domain.autopilot_config import AutopilotConfig, EventKind, Reaction
from coditect_cli.domain.limits import (
    MAX_BUDGET,
    MAX_CHECKPOINT,
    MAX_DAY,
    MAX_PRICE,
    MAX_TERMINAL,
    MAX_TIMEOUT,
)

StreamId = NewType("StreamId", str)
RepoId = NewType("RepoId", str)
TaskId = NewType("TaskId", str)
BranchName = NewType("BranchName", str)

# Identifiers end up in branch names, directory names, tmux pane titles and shell environments: keep them
# to a conservative alphabet so no quoting is ever needed.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
TOPIC_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
_ID_RE = re.compile(ID_PATTERN)

Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Topic = Annotated[str, Field(pattern=TOPIC_PATTERN, max_length=100)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Strategy = Literal["squash", "merge", "rebase"]
# A code owner as CODEOWNERS writes it: ``@login``, ``@org/team`` or an e-mail address.
OWNER_PATTERN = r"^@[A-Za-z0-9][A-Za-z0-9._/-]*$|^[^@\s]+@[^@\s]+$"
Owner = Annotated[str, Field(pattern=OWNER_PATTERN)]


# Control characters (C0, DEL, C1) and the Unicode line separators: a NUL crashes every system call that
# takes the string, an escape sequence rewrites the terminal, a newline typed into a pane runs a second
# line. Multi-line fields (a prompt, a gate's shell script) may hold newlines and tabs, nothing else.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def control_character_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be used (it holds a control character), or None when it can."""
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if found is None:
        return None
    char = found.group()
    allowed = " (only newlines and tabs are allowed here)" if multiline else ""
    return f"{value!r} contains the control character U+{ord(char):04X}{allowed}"


def _check_text(value: Any, multiline: bool) -> None:
    if isinstance(value, str):
        reason = control_character_problem(value, multiline=multiline)
        if reason:
            raise ValueError(reason)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _check_text(item, multiline)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, False)
            _check_text(item, multiline)


def worktrees_problem(value: str) -> str | None:
    """Why ``value`` cannot be the worktrees folder (relative to the project root), or None when it can.

    It must name a folder strictly inside the project and outside ``.git``: the worktrees are created
    there and removed from there, so a path that leaves the project would put checkouts (and their removal)
    elsewhere on the disk.
    """
    if value.startswith("~"):
        return (
            f"worktrees: {value!r} starts with '~' (no home expansion here); give a path inside the project"
        )
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return f"worktrees: {value!r} is absolute; give a folder relative to the project root"
    if "\\" in value:
        return f"worktrees: {value!r} contains a backslash; use '/'"
    norm = posixpath.normpath(value) if value else "."
    if norm == ".":
        return f"worktrees: {value!r} is the project root itself; name a folder inside it"
    parts = norm.split("/")
    if parts[0] == "..":
        return f"worktrees: {value!r} leads outside the project"
    if ".git" in parts:
        return f"worktrees: {value!r} is inside a '.git' folder"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    # Fields whose text may span lines (newlines and tabs); every other string is one line.
    _MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        _check_text(value, info.field_name in cls._MULTILINE)
        return value


class DayRange(_Model):
    """An inclusive range of phase days, written ``3`` or ``"3-4"`` in YAML."""

    first: int = Field(ge=1, le=MAX_DAY, strict=True)
    last: int = Field(ge=1, le=MAX_DAY, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("a day or a day range such as 3 or 3-4 is expected")
        if isinstance(value, int):
            return {"first": value, "last": value}
        if isinstance(value, str):
            m = re.fullmatch(r" *(\d+) *(?:- *(\d+) *)?", value)
            if not m:
                raise ValueError(f"{value!r} is not a day or a day range such as 3 or 3-4")
            first = int(m.group(1))
            return {"first": first, "last": int(m.group(2) or first)}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.last < self.first:
            raise ValueError(f"day range {self.first}-{self.last} ends before it starts")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, int) and self.first <= day <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


class Schedule(_Model):
    """When the phase runs: its first day, how many working days, and which weekdays count."""

    start: _dt.date
    days: int = Field(ge=1, le=366, strict=True)
    slack: int = Field(
        default=0, ge=0, le=366, strict=True, description="Extra days checkpoints may use past `days`."
    )
    workdays: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")

    @field_validator("workdays")
    @classmethod
    def _workdays(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if not value:
            raise ValueError("at least one workday is needed")
        if len(set(value)) != len(value):
            raise ValueError("workdays are listed twice")
        return value

    @property
    def last_day(self) -> int:
        """The last phase day anything may be scheduled on."""
        return self.days + self.slack


class Branches(_Model):
    """Branch naming. ``{phase}``, ``{stream}`` and ``{topic}`` are substituted."""

    base: str = "main"
    develop: str = "develop"
    integration: str = "{phase}-integration"
    feature: str = "feature/{phase}/{stream}/{topic}"

    @field_validator("integration")
    @classmethod
    def _integration(cls, value: str) -> str:
        _check_placeholders(value, allowed={"phase"}, required={"phase"})
        return value

    @field_validator("feature")
    @classmethod
    def _feature(cls, value: str) -> str:
        _check_placeholders(value, allowed={"phase", "stream", "topic"}, required={"stream", "topic"})
        return value


def _check_placeholders(template: str, *, allowed: set[str], required: set[str]) -> None:
    found = set(re.findall(r"\{([^{}]*)\}", template))
    unknown = found - allowed
    if unknown:
        raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {sorted(allowed)}")
    missing = required - found
    if missing:
        raise ValueError(f"the template must contain {{{sorted(missing)[0]}}}")
    try:
        template.format(**dict.fromkeys(allowed, "x"))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(
            f"{template!r} is not a valid template ({exc}); a literal brace is written {{{{ or }}}}"
        ) from None


class Repository(_Model):
    """A git repository of the phase: the superproject root (``.``) or a submodule, relative to the root."""

    id: Identifier
    path: str = Field(min_length=1)


class Gate(_Model):
    """A quality-gate command, run by a shell in a worktree of ``repo`` (default: the stream's first)."""

    _MULTILINE: ClassVar[frozenset[str]] = frozenset({"run"})

    name: Identifier
    run: str = Field(min_length=1)
    repo: Identifier | None = None
    timeout: int = Field(default=1800, ge=1, le=MAX_TIMEOUT, strict=True, description="Seconds.")
    flaky: bool = Field(
        default=False,
        strict=True,
        description="Known to fail now and then: a batch that fails on it is run once more before it is "
        "bisected, and a pass then is reported as a flake.",
    )


class Work(_Model):
    """A stream's work in one repository: its topic (branch) and the paths it owns there."""

    repo: Identifier
    topic: Topic
    owns: tuple[str, ...] = Field(min_length=1)


class Deliverable(_Model):
    """A task of a stream, due over a range of days, possibly waiting on tasks of other streams."""

    id: Identifier
    days: DayRange
    title: str = Field(min_length=1)
    depends_on: tuple[Identifier, ...] = ()


class Price(_Model):
    """What one model costs, in US dollars per million tokens."""

    input: float = Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)
    output: float = Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)
    cache_write: float = Field(
        ge=0, le=MAX_PRICE, allow_inf_nan=False, description="Writing the prompt cache (5-minute entries)."
    )
    cache_read: float = Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)


class AnthropicAgent(_Model):
    """Options of the built-in agent (``run: anthropic``): a tool-using loop on the Anthropic Messages API."""

    model: str = Field(default="claude-sonnet-4-5", min_length=1)
    max_tokens: int = Field(default=8192, ge=1, le=128000, strict=True)
    max_turns: int = Field(
        default=50, ge=1, le=1000, strict=True, description="Model requests per task, at most."
    )
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        le=MAX_BUDGET,
        allow_inf_nan=False,
        description="Hard stop for the stream's spending (all tasks); warning at 80%.",
    )
    commands: tuple[str, ...] = Field(
        default=(),
        description="Commands the agent may run besides the stream's gates: an exact command line, or a "
        "prefix ending in ` *` (e.g. `pytest *`).",
    )
    command_timeout: int = Field(
        default=600, ge=1, le=MAX_TIMEOUT, strict=True, description="Seconds a command or gate may run."
    )


AgentKindName = Literal["claude", "codex", "aider", "anthropic", "shell", "template"]
AGENT_KINDS: tuple[str, ...] = ("claude", "codex", "aider", "anthropic", "shell", "template")
KIND_TAG = "kind:"
"""Prefix of the tags telling the forms of ``agent:`` apart (dropped from error locations by the loader)."""
RoleName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class _AgentBase(_Model):
    role: RoleName | None = Field(default=None, description="The CODEOWNERS role (default: the stream id).")
    args: tuple[str, ...] = Field(default=(), description="Extra arguments appended to the agent's command.")


class ClaudeAgent(_AgentBase):
    """Claude Code (``claude``): the prompt as its first message, hooks for state, the worktrees added."""

    kind: Literal["claude"] = "claude"
    model: str | None = None
    permission_mode: Literal["default", "acceptEdits", "plan", "bypassPermissions"] = Field(
        default="acceptEdits",
        description="Claude Code's --permission-mode: acceptEdits allows edits in the worktrees, the rest asks.",
    )
    allowed_tools: tuple[str, ...] | None = Field(
        default=None,
        description="--allowedTools; default: git, the stream's gate commands and the file tools.",
    )
    add_dirs: bool = Field(default=True, description="--add-dir for the stream's other worktrees.")
    resume: bool = Field(default=True, description="`streams restart` continues the last conversation.")


class CodexAgent(_AgentBase):
    """OpenAI Codex CLI (``codex``)."""

    kind: Literal["codex"]
    model: str | None = None
    sandbox: Literal["read-only", "workspace-write", "danger-full-access"] = "workspace-write"
    approval: Literal["on-request", "never"] = "on-request"  # what codex 0.17x accepts
    add_dirs: bool = True
    resume: bool = True


class AiderAgent(_AgentBase):
    """aider (``aider``)."""

    kind: Literal["aider"]
    model: str | None = None
    auto_commits: bool = Field(default=False, description="Let aider commit by itself (--auto-commits).")


class BuiltinAgent(_AgentBase):
    """coditect's built-in agent on the Anthropic API (``run: anthropic``; its options: the stream's
    ``anthropic:``)."""

    kind: Literal["anthropic"]


class ShellAgent(_AgentBase):
    """A login shell: a person works in the pane."""

    kind: Literal["shell"]


class TemplateAgent(_AgentBase):
    """A command template with ``{prompt_file}``, ``{stream}``, ``{worktree}`` placeholders."""

    kind: Literal["template"]
    command: str = Field(min_length=1)

    @field_validator("command")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return check_run_template(value)


AgentOptions = Union[ClaudeAgent, CodexAgent, AiderAgent, BuiltinAgent, ShellAgent, TemplateAgent]  # noqa: UP007


def check_run_template(value: str) -> str:
    """``value`` when its placeholders are all known; ValueError naming the first unknown one."""
    unknown = set(re.findall(r"\{([^{}]*)\}", value)) - {"prompt_file", "stream", "worktree"}
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed: prompt_file, stream, worktree"
        )
    return value


def _agent_form(value: Any) -> str:
    if isinstance(value, dict):
        return KIND_TAG + str(value.get("kind", "?"))
    if isinstance(value, BaseModel):
        return KIND_TAG + str(getattr(value, "kind", "?"))
    return KIND_TAG + "role"


AgentField = Annotated[
    Union[  # noqa: UP007 - the tags need the explicit Union
        Annotated[RoleName, Tag(KIND_TAG + "role")],
        Annotated[ClaudeAgent, Tag(KIND_TAG + "claude")],
        Annotated[CodexAgent, Tag(KIND_TAG + "codex")],
        Annotated[AiderAgent, Tag(KIND_TAG + "aider")],
        Annotated[BuiltinAgent, Tag(KIND_TAG + "anthropic")],
        Annotated[ShellAgent, Tag(KIND_TAG + "shell")],
        Annotated[TemplateAgent, Tag(KIND_TAG + "template")],
    ],
    Discriminator(
        _agent_form,
        custom_error_type="agent_kind",
        custom_error_message=f"unknown agent kind; use one of: {', '.join(AGENT_KINDS)}",
    ),
]


def options_for_run(run: str) -> AgentOptions:
    """The agent options ``run:`` (the short form) stands for."""
    if run == "claude":
        return ClaudeAgent()
    if run == "codex":
        return CodexAgent(kind="codex")
    if run == "aider":
        return AiderAgent(kind="aider")
    if run == "anthropic":
        return BuiltinAgent(kind="anthropic")
    if run == "shell":
        return ShellAgent(kind="shell")
    return TemplateAgent(kind="template", command=run)


class Host(_Model):
    """A remote machine streams can run on, reached over SSH: only ssh, git, tmux and the agent's CLI are
    used there. Its streams' clones, worktrees, prompts and pane logs live under ``workdir``."""

    name: Identifier
    ssh: str = Field(
        pattern=r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*$",
        max_length=200,
        description="SSH destination: `host` or `user@host` (a Host alias of the ssh config works too).",
    )
    port: int | None = Field(default=None, ge=1, le=65535, strict=True)
    workdir: str = Field(
        pattern=r"^/[A-Za-z0-9._/-]*$",
        max_length=200,
        description="Absolute directory on the host holding coditect's clones and worktrees.",
    )
    max_working: int | None = Field(
        default=None, ge=1, le=1000, strict=True, description="How many streams may run on it at once."
    )

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str) -> str:
        norm = posixpath.normpath(value)
        if norm == "/" or ".." in norm.split("/"):
            raise ValueError(f"workdir {value!r} must be a folder below / without '..'")
        return norm


class Stream(_Model):
    """One workstream: one terminal, one agent, one feature branch per repository it works in."""

    _MULTILINE: ClassVar[frozenset[str]] = frozenset({"prompt"})

    id: Identifier
    terminal: int = Field(ge=1, le=MAX_TERMINAL, strict=True)
    name: str = Field(min_length=1)
    agent: AgentField = Field(
        description="The agent role (a name, the CODEOWNERS owner), or a mapping: `role`, `kind` "
        "(claude, codex, aider, shell, template) and the kind's options."
    )
    owner: str | None = Field(default=None, pattern=OWNER_PATTERN)
    depends_on: tuple[Identifier, ...] = ()
    work: tuple[Work, ...] = Field(min_length=1)
    deliverables: tuple[Deliverable, ...] = ()
    gates: tuple[Gate, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)], ...] = Field(
        default=(),
        description="Variables of coditect's environment this stream's pane gets on purpose (e.g. a key its "
        "agent needs); no credential reaches a pane otherwise.",
    )
    prompt: str = ""
    run: str = Field(
        default="shell",
        min_length=1,
        description=(
            "The agent, short form: `shell` (a login shell), `claude` (Claude Code), `codex`, `aider`, "
            "`anthropic` (the built-in agent on the Anthropic API, options under `anthropic:`), or a command "
            "template with {prompt_file}, {stream}, {worktree} placeholders. `agent:` as a mapping gives the "
            "kind with options instead."
        ),
    )
    anthropic: AnthropicAgent = AnthropicAgent()
    host: Identifier | None = Field(
        default=None, description="Run on this host of `hosts:` (over SSH) instead of this machine."
    )

    @model_validator(mode="before")
    @classmethod
    def _agent_kind(cls, data: Any) -> Any:
        """An ``agent:`` mapping without ``kind`` takes it from ``run:``; both at once must agree."""
        if not isinstance(data, dict) or not isinstance(data.get("agent"), dict):
            return data
        agent = dict(data["agent"])
        run = data.get("run")
        if "kind" in agent and run is not None:
            raise ValueError("give the agent once: `run:` or `agent.kind`, not both")
        if "kind" not in agent:
            run = run if isinstance(run, str) else "shell"
            kind = run if run in AGENT_KINDS else "template"
            agent["kind"] = kind
            if kind == "template" and "command" not in agent:
                agent["command"] = run
        return {**data, "agent": agent}

    @field_validator("run")
    @classmethod
    def _run(cls, value: str) -> str:
        return value if value in AGENT_KINDS else check_run_template(value)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return value

    @property
    def role(self) -> str:
        """The agent role: ``agent`` as a name, else the mapping's ``role``, else the stream id."""
        if isinstance(self.agent, str):
            return self.agent
        return self.agent.role or self.id

    @property
    def agent_options(self) -> AgentOptions:
        """The agent kind and its options: the ``agent:`` mapping, else what ``run:`` stands for."""
        if isinstance(self.agent, str):
            return options_for_run(self.run)
        return self.agent

    @property
    def code_owner(self) -> str:
        """The CODEOWNERS owner: ``owner`` when given, else ``@<role>``."""
        return self.owner or f"@{self.role}"


class Shared(_Model):
    """Paths in one repository owned jointly by several streams (every owner must approve)."""

    repo: Identifier
    paths: tuple[str, ...] = Field(min_length=1)
    streams: tuple[Identifier, ...] = Field(min_length=2)


class Checkpoint(_Model):
    """An integration checkpoint: on ``day``, merge the ready PRs of ``streams`` if the gates pass."""

    id: int = Field(ge=1, le=MAX_CHECKPOINT, strict=True)
    day: int = Field(ge=1, le=MAX_DAY, strict=True)
    title: str = Field(min_length=1)
    streams: tuple[Identifier, ...] = Field(min_length=1)
    gates: tuple[Gate, ...] = ()


class Merge(_Model):
    """How the phase lands: the target branch, the merge strategy, the release tag and the full suite."""

    target: str = "develop"
    strategy: Strategy = "squash"
    tag: str | None = None
    suite: tuple[Gate, ...] = ()


class Manifest(_Model):
    """A phase manifest (``workstreams/<phase>.yaml``)."""

    version: Literal[1] = 1
    phase: Identifier
    title: str = ""
    project: Identifier | None = None
    forge: Literal["auto", "github", "local"] = "auto"
    forge_url: str | None = Field(
        default=None, description="GitHub Enterprise API base URL, e.g. https://github.example.com/api/v3."
    )
    layout: Literal["auto", "tiled", "windows"] = Field(
        default="auto",
        description="tmux layout: one tiled window (auto: up to 6 streams) or a window per stream.",
    )
    trust: bool = Field(
        default=False,
        description="Consent: coditect may add the project root to Claude Code's trusted projects before launch.",
    )
    worktrees: str = Field(
        default=".coditect/worktrees",
        description="Where stream worktrees go, relative to the project root: <worktrees>/<phase>/<stream>/<repo>.",
    )
    maintainers: tuple[Owner, ...] = Field(
        default=(),
        description=(
            "Who approves changes to paths no stream owns (CI scripts, build files...): a PR changing such a "
            "path needs one of them. Owners as CODEOWNERS writes them (@login, @org/team or an e-mail)."
        ),
    )
    schedule: Schedule
    branches: Branches = Branches()
    repositories: tuple[Repository, ...] = Field(min_length=1)
    hosts: tuple[Host, ...] = ()
    shared: tuple[Shared, ...] = ()
    streams: tuple[Stream, ...] = Field(min_length=1)
    checkpoints: tuple[Checkpoint, ...] = ()
    merge: Merge = Merge()
    pass_env: tuple[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)], ...] = Field(
        default=(),
        description="Variables of coditect's environment every pane and every gate gets on purpose (beyond the "
        "allow-listed PATH, HOME, locale...).",
    )
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="Model prices (USD per million tokens) overriding the built-in table, by model name.",
    )
    autopilot: AutopilotConfig = AutopilotConfig()
    reactions: dict[EventKind, Reaction] = Field(
        default_factory=dict,
        description="What `coditect autopilot` does per event kind (default: send-to-agent, 3 retries).",
    )

    @field_validator("worktrees")
    @classmethod
    def _worktrees(cls, value: str) -> str:
        reason = worktrees_problem(value)
        if reason:
            raise ValueError(reason)
        return posixpath.normpath(value)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if isinstance(value, bool):  # YAML reads `yes`/`true` as True, which equals 1
            raise ValueError(f"the manifest version is the number 1 (got {value!r})")
        return value

    # -- derived views -------------------------------------------------------------------------------
    def repository(self, repo_id: str) -> Repository:
        """The repository with ``repo_id`` (KeyError when unknown)."""
        for repo in self.repositories:
            if repo.id == repo_id:
                return repo
        raise KeyError(repo_id)

    def host(self, name: str) -> Host:
        """The host called ``name`` (KeyError when unknown)."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def stream(self, stream_id: str) -> Stream:
        """The stream with ``stream_id`` (KeyError when unknown)."""
        for stream in self.streams:
            if stream.id == stream_id:
                return stream
        raise KeyError(stream_id)

    @property
    def integration_branch(self) -> BranchName:
        """The phase integration branch, e.g. ``phase-1-integration``."""
        return BranchName(self.branches.integration.format(phase=self.phase))

    def feature_branch(self, stream: Stream, work: Work) -> BranchName:
        """The feature branch of ``stream`` in ``work.repo``, e.g. ``feature/phase-1/infra/gcp-foundation``."""
        return BranchName(self.branches.feature.format(phase=self.phase, stream=stream.id, topic=work.topic))

    def ordered_streams(self) -> list[Stream]:
        """The streams in terminal order (then by id)."""
        return sorted(self.streams, key=lambda s: (s.terminal, s.id))

    def pairs(self) -> tuple[Pair, ...]:
        """Every (stream, repository) pair, in terminal order then the stream's order of work (made once per
        manifest: a report asks for them per repository and per stream)."""
        entry = _PAIRS.get(id(self))
        if entry is not None and entry[0]() is self:
            return entry[1]
        made = self._pairs()
        key = id(self)
        _PAIRS[key] = (weakref.ref(self, lambda _gone: _PAIRS.pop(key, None)), made)
        return made

    def _pairs(self) -> tuple[Pair, ...]:
        out: list[Pair] = []
        for stream in self.ordered_streams():
            for work in stream.work:
                out.append(
                    Pair(
                        stream=stream,
                        work=work,
                        repo=self.repository(work.repo),
                        branch=self.feature_branch(stream, work),
                    )
                )
        return tuple(out)

    def tasks(self) -> dict[TaskId, tuple[Stream, Deliverable]]:
        """Every task (deliverable) by id, with its stream."""
        return {TaskId(d.id): (s, d) for s in self.streams for d in s.deliverables}


class Pair(BaseModel):
    """One (stream, repository) pair: the unit that gets a feature branch and a worktree."""

    model_config = ConfigDict(frozen=True)

    stream: Stream
    work: Work
    repo: Repository
    branch: BranchName

    @property
    def key(self) -> str:
        return f"{self.stream.id}@{self.repo.id}"


_PAIRS: dict[int, tuple[weakref.ref[Manifest], tuple[Pair, ...]]] = {}
"""The pairs of each manifest alive, by its identity (a manifest is immutable, so are they; models with
dict fields cannot be hashed)."""


def pairs_by_repo(pairs: Iterable[Pair]) -> dict[str, list[Pair]]:
    """``pairs`` grouped by repository id, in first-seen order (each group keeps the pairs' order)."""
    out: dict[str, list[Pair]] = {}
    for pair in pairs:
        out.setdefault(pair.repo.id, []).append(pair)
    return out


def worktree_path(manifest: Manifest, root: Path, pair: Pair) -> Path:
    """Where ``pair``'s worktree lives: ``<root>/<worktrees>/<phase>/<stream>/<repo>``."""
    return root / manifest.worktrees / manifest.phase / pair.stream.id / pair.repo.id
