"""``coditect export k8s PHASE``: the headless tasks of a phase as Kubernetes Jobs, or one Argo Workflow.

A stream whose agent runs headless (the built-in agent ``anthropic``: ``coditect agent run STREAM --task
ID``; Claude Code: ``claude -p``; Codex: ``codex exec``) gets one Job per task (deliverable). Each Job clones
the stream's branch from origin, runs the task, and pushes the branch back: the work reaches integration
through origin, as from any other place. The Job's exit status is the task's report (plus the
``coditect.dev/*`` labels and annotations naming the phase, stream, task and what it waits for).

With ``--argo`` the same containers become the templates of one Argo Workflow whose DAG is the task graph
(``depends_on``); a task waits for the tasks of its stream that come before it as well (one branch, one
writer at a time).

Built with the official ``kubernetes`` client models (the Argo Workflow's envelope is a plain mapping around
them: Argo has no model in that library). Secrets are only ever referenced by name (``secretKeyRef``), never
inlined: the API keys come from a Kubernetes Secret (``--secret``, default ``coditect-agent``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coditect_cli.domain.manifest import Deliverable, Manifest, Stream
from coditect_cli.errors import UnavailableError, UsageError
from coditect_cli.project import Project

HEADLESS = ("anthropic", "claude", "codex")
SECRET = "coditect-agent"
IMAGE = "ghcr.io/coditect/agent:latest"
SECRET_KEYS = {  # agent kind -> variables taken from the Secret
    "anthropic": ("ANTHROPIC_API_KEY",),
    "claude": ("ANTHROPIC_API_KEY",),
    "codex": ("OPENAI_API_KEY",),
}
GIT_TOKEN = "GIT_TOKEN"  # optional key of the Secret: the push credential (an https origin's token)
LABEL = "coditect.dev"

_SCRIPT = r"""set -eu
git clone --quiet --branch "$CODITECT_BRANCH" --single-branch "$CODITECT_ORIGIN" /work/repo
cd /work/repo
git config user.name "coditect ($CODITECT_STREAM)"
git config user.email "coditect-$CODITECT_STREAM@users.noreply.invalid"
if [ -n "${GIT_TOKEN:-}" ]; then
  git config credential.helper '!f() { echo username=x-access-token; echo "password=$GIT_TOKEN"; }; f'
fi
%s
git push origin "HEAD:$CODITECT_BRANCH"
"""

_AGENT_LINES = {
    "anthropic": 'coditect agent run "$CODITECT_STREAM" --task "$CODITECT_TASK" --phase "$CODITECT_PHASE"',
    "claude": 'claude -p "$CODITECT_PROMPT" --permission-mode acceptEdits',
    "codex": 'codex exec --full-auto "$CODITECT_PROMPT"',
}


def k8s_name(*parts: str) -> str:
    """A DNS-1123 name (lowercase letters, digits, ``-``; at most 63) for ``parts``; a hash keeps long or
    rewritten names apart."""
    raw = "-".join(parts)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if name != raw or len(name) > 63:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[: 63 - 9].rstrip('-')}-{digest}"
    return name


@dataclass(frozen=True)
class HeadlessTask:
    """One task of a headless stream: what its container runs."""

    stream: Stream
    task: Deliverable
    kind: str
    branch: str
    origin: str
    name: str
    needs: tuple[str, ...]  # names of the tasks it waits for


@dataclass
class ExportResult:
    """What ``export k8s`` wrote."""

    phase: str
    kind: str  # "jobs" or "argo"
    files: list[Path]
    tasks: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # stream -> why it has no job
    secret: str = SECRET

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "kind": self.kind,
            "files": [str(f) for f in self.files],
            "tasks": self.tasks,
            "skipped": self.skipped,
            "secret": self.secret,
        }


def _origin(project: Project, manifest: Manifest, repo_id: str) -> str:
    from coditect_cli.adapters import proc

    path = (project.root / manifest.repository(repo_id).path).resolve()
    url = proc.run(["git", "-C", str(path), "remote", "get-url", "origin"], check=False).stdout.strip()
    if not url:
        raise UnavailableError(
            f"repository {repo_id!r} has no origin: a cluster job gets its work only through origin",
            hint=f"add one: git -C {path} remote add origin URL",
        )
    if re.match(r"^[a-z+]+://[^/@]+:[^/@]+@", url):
        raise UsageError(
            f"the origin URL of {repo_id!r} carries a credential; it would be written into the manifests",
            hint=f"use a URL without one; the jobs take the push token from the Secret's {GIT_TOKEN} key",
        )
    return url


def headless_tasks(project: Project, manifest: Manifest) -> tuple[list[HeadlessTask], dict[str, str]]:
    """The tasks of the headless streams (in terminal order, then task order) and the streams left out."""
    from coditect_cli.domain.launch import ordered_streams

    tasks: list[HeadlessTask] = []
    skipped: dict[str, str] = {}
    names: dict[str, str] = {}
    for stream in ordered_streams(manifest):
        kind = stream.agent_options.kind
        if kind not in HEADLESS:
            skipped[stream.id] = f"its agent ({kind}) has no headless mode"
            continue
        if not stream.deliverables:
            skipped[stream.id] = "it has no tasks (deliverables)"
            continue
        work = stream.work[0]
        origin = _origin(project, manifest, work.repo)
        previous: str | None = None
        for task in stream.deliverables:
            name = k8s_name(manifest.phase, stream.id, task.id)
            names[task.id] = name
            needs = tuple(d for d in task.depends_on)
            tasks.append(
                HeadlessTask(
                    stream,
                    task,
                    kind,
                    manifest.feature_branch(stream, work),
                    origin,
                    name,
                    needs + ((previous,) if previous else ()),
                )
            )
            previous = task.id
    # Dependencies by task id -> by name; a task of a stream left out is waited for by no job.
    resolved = [
        HeadlessTask(
            t.stream,
            t.task,
            t.kind,
            t.branch,
            t.origin,
            t.name,
            tuple(dict.fromkeys(names[d] for d in t.needs if d in names)),
        )
        for t in tasks
    ]
    return resolved, skipped


def container(task: HeadlessTask, manifest: Manifest, *, image: str, secret: str) -> Any:
    """The task's container (a ``V1Container``): clone, run the agent, push; secrets by reference."""
    from kubernetes import client

    prompt = (task.stream.prompt + "\n\n" if task.stream.prompt else "") + (
        f"Task {task.task.id}: {task.task.title}. Work only in the paths your stream owns "
        f"({', '.join(task.stream.work[0].owns)}); commit your work when done."
    )
    env = [
        client.V1EnvVar(name="CODITECT_PHASE", value=manifest.phase),
        client.V1EnvVar(name="CODITECT_STREAM", value=task.stream.id),
        client.V1EnvVar(name="CODITECT_TASK", value=task.task.id),
        client.V1EnvVar(name="CODITECT_BRANCH", value=task.branch),
        client.V1EnvVar(name="CODITECT_ORIGIN", value=task.origin),
        client.V1EnvVar(name="CODITECT_PROMPT", value=prompt),
    ]
    env += [client.V1EnvVar(name=k, value=v) for k, v in sorted(task.stream.env.items())]
    for key in (*SECRET_KEYS[task.kind], GIT_TOKEN):
        env.append(
            client.V1EnvVar(
                name=key,
                value_from=client.V1EnvVarSource(
                    secret_key_ref=client.V1SecretKeySelector(name=secret, key=key, optional=key == GIT_TOKEN)
                ),
            )
        )
    return client.V1Container(
        name="agent",
        image=image,
        command=["/bin/sh", "-c", _SCRIPT % _AGENT_LINES[task.kind]],
        env=env,
        working_dir="/work",
        volume_mounts=[client.V1VolumeMount(name="work", mount_path="/work")],
    )


def _labels(task: HeadlessTask, manifest: Manifest) -> dict[str, str]:
    return {
        f"{LABEL}/phase": k8s_name(manifest.phase),
        f"{LABEL}/stream": k8s_name(task.stream.id),
        f"{LABEL}/task": k8s_name(task.task.id),
    }


def job(task: HeadlessTask, manifest: Manifest, *, image: str, secret: str, namespace: str | None) -> Any:
    """The task's ``V1Job``."""
    from kubernetes import client

    labels = _labels(task, manifest)
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=task.name,
            namespace=namespace,
            labels=labels,
            annotations={
                f"{LABEL}/task-title": task.task.title,
                f"{LABEL}/depends-on": ",".join(task.needs),
                f"{LABEL}/branch": task.branch,
            },
        ),
        spec=client.V1JobSpec(
            backoff_limit=0,
            ttl_seconds_after_finished=7 * 24 * 3600,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=_pod_spec(task, manifest, image=image, secret=secret),
            ),
        ),
    )


def _pod_spec(task: HeadlessTask, manifest: Manifest, *, image: str, secret: str) -> Any:
    from kubernetes import client

    return client.V1PodSpec(
        restart_policy="Never",
        containers=[container(task, manifest, image=image, secret=secret)],
        volumes=[client.V1Volume(name="work", empty_dir=client.V1EmptyDirVolumeSource())],
    )


def serialize(model: Any) -> dict[str, Any]:
    """A client model as the plain mapping ``kubectl apply`` reads (camelCase keys, no nulls)."""
    from kubernetes.client import ApiClient

    data: dict[str, Any] = ApiClient().sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    return data


def workflow(
    tasks: list[HeadlessTask], manifest: Manifest, *, image: str, secret: str, namespace: str | None
) -> dict[str, Any]:
    """One Argo Workflow: a DAG over the tasks (``dependencies`` from the task graph), one template each."""
    dag = [
        {"name": t.name, "template": t.name, **({"dependencies": list(t.needs)} if t.needs else {})}
        for t in tasks
    ]
    templates: list[dict[str, Any]] = [{"name": "phase", "dag": {"tasks": dag}}]
    for t in tasks:
        templates.append(
            {
                "name": t.name,
                "metadata": {"labels": _labels(t, manifest)},
                "container": serialize(container(t, manifest, image=image, secret=secret)),
                "volumes": [{"name": "work", "emptyDir": {}}],
            }
        )
    metadata: dict[str, Any] = {"generateName": k8s_name(manifest.phase) + "-"}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {"entrypoint": "phase", "templates": templates},
    }


def export(
    project: Project,
    phase: str | None,
    out_dir: Path,
    *,
    argo: bool = False,
    image: str = IMAGE,
    secret: str = SECRET,
    namespace: str | None = None,
) -> ExportResult:
    """Write the Jobs (one YAML file each) or the Workflow (``workflow.yaml``) into ``out_dir``."""
    import yaml

    from coditect_cli.services.manifest import load_valid

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", secret) or len(secret) > 253:
        raise UsageError(f"--secret {secret!r} is not a Kubernetes Secret name (lowercase, digits, '-')")
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        raise UnavailableError(
            "`export k8s` needs the Kubernetes client library", hint="pip install 'coditect[k8s]'"
        ) from None
    tasks, skipped = headless_tasks(project, manifest)
    if not tasks:
        raise UsageError(
            f"phase {manifest.phase} has no task with a headless agent ({', '.join(HEADLESS)})",
            hint="give a stream `run: anthropic`, `run: claude` or `agent: {kind: codex}` and deliverables",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if argo:
        path = out_dir / "workflow.yaml"
        data = workflow(tasks, manifest, image=image, secret=secret, namespace=namespace)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        files.append(path)
    else:
        for t in tasks:
            path = out_dir / f"{t.name}.yaml"
            data = serialize(job(t, manifest, image=image, secret=secret, namespace=namespace))
            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            files.append(path)
    return ExportResult(
        manifest.phase, "argo" if argo else "jobs", files, [t.task.id for t in tasks], skipped, secret
    )
