"""``coditect export k8s``: Jobs (and an Argo Workflow) for the headless streams' tasks, validated against the
published Kubernetes schemas (kubernetes-validate ships them); secrets only by reference."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers import coditect, git_in

K8S_VERSION = "1.30.0"
SECRET_VALUE = "sk-ant-api03-" + "x" * 40  # in the environment of the export: must appear nowhere

MANIFEST = """version: 1
phase: phase-1
forge: local
schedule: {start: 2026-12-01, days: 10}
repositories:
  - {id: app, path: .}
streams:
  - id: api
    terminal: 1
    name: API
    agent: api-dev
    run: anthropic
    work: [{repo: app, topic: api, owns: [api/]}]
    deliverables:
      - {id: api-models, days: 1, title: Models}
      - {id: api-routes, days: 2, title: Routes, depends_on: [ui-shell]}
  - id: ui
    terminal: 2
    name: UI
    agent: ui-dev
    run: claude
    work: [{repo: app, topic: ui, owns: [ui/]}]
    deliverables:
      - {id: ui-shell, days: 1, title: Shell}
  - id: ops
    terminal: 3
    name: Ops
    agent: {kind: codex}
    work: [{repo: app, topic: ops, owns: [ops/]}]
    deliverables:
      - {id: ops-ci, days: 1-2, title: CI, depends_on: [api-models]}
  - id: human
    terminal: 4
    name: Human
    agent: person
    run: shell
    work: [{repo: app, topic: human, owns: [docs/]}]
    deliverables:
      - {id: docs, days: 1, title: Docs}
"""


@pytest.fixture
def project(tmp_path: Path, isolated_git: Path) -> Path:
    origin, root = tmp_path / "origin.git", tmp_path / "proj"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    (root / "workstreams").mkdir()
    (root / "workstreams" / "phase-1.yaml").write_text(MANIFEST)
    git_in(root, "add", "-A")
    git_in(root, "-c", "user.name=T", "-c", "user.email=t@e.invalid", "commit", "-qm", "init")
    git_in(root, "remote", "add", "origin", str(origin))
    return root


def test_jobs_validate_and_reference_the_secret(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    done = coditect(project, "export", "k8s", "-o", str(out), "--secret", "team-keys", "--json",
                    env={"ANTHROPIC_API_KEY": SECRET_VALUE})  # fmt: skip
    assert done.code == 0, done.output
    data = done.json()["data"]
    assert data["tasks"] == ["api-models", "api-routes", "ui-shell", "ops-ci"]
    assert set(data["skipped"]) == {"human"}
    jobs = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}
    assert set(jobs) == {
        "phase-1-api-api-models",
        "phase-1-api-api-routes",
        "phase-1-ui-ui-shell",
        "phase-1-ops-ops-ci",
    }
    for name, job in jobs.items():
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)  # raises on any schema violation
        assert job["kind"] == "Job" and job["metadata"]["name"] == name
        text = (out / f"{name}.yaml").read_text()
        assert SECRET_VALUE not in text
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        secret_refs = {k: e["valueFrom"]["secretKeyRef"] for k, e in env.items() if "valueFrom" in e}
        assert all(ref["name"] == "team-keys" for ref in secret_refs.values())
        assert all("value" not in env[k] for k in secret_refs)
        assert env["CODITECT_ORIGIN"]["value"] == str(project.parent / "origin.git")
        script = container["command"][-1]
        assert "git clone" in script and 'git push origin "HEAD:$CODITECT_BRANCH"' in script
    api = jobs["phase-1-api-api-models"]["spec"]["template"]["spec"]["containers"][0]
    assert 'coditect agent run "$CODITECT_STREAM" --task "$CODITECT_TASK"' in api["command"][-1]
    assert {e["name"]: e.get("value") for e in api["env"]}["CODITECT_BRANCH"] == "feature/phase-1/api/api"
    ui = jobs["phase-1-ui-ui-shell"]["spec"]["template"]["spec"]["containers"][0]
    assert "claude -p" in ui["command"][-1]
    assert "ANTHROPIC_API_KEY" in {e["name"] for e in ui["env"]}
    ops = jobs["phase-1-ops-ops-ci"]["spec"]["template"]["spec"]["containers"][0]
    assert "codex exec" in ops["command"][-1] and "OPENAI_API_KEY" in {e["name"] for e in ops["env"]}
    routes = jobs["phase-1-api-api-routes"]["metadata"]["annotations"]["coditect.dev/depends-on"]
    assert routes.split(",") == ["phase-1-ui-ui-shell", "phase-1-api-api-models"]


def test_argo_workflow_dag_is_the_task_graph(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "argo"
    done = coditect(project, "export", "k8s", "--argo", "-o", str(out), "--json")
    assert done.code == 0, done.output
    wf = yaml.safe_load((out / "workflow.yaml").read_text())
    assert wf["apiVersion"] == "argoproj.io/v1alpha1" and wf["kind"] == "Workflow"
    templates = {t["name"]: t for t in wf["spec"]["templates"]}
    dag = {
        t["name"]: sorted(t.get("dependencies", []))
        for t in templates[wf["spec"]["entrypoint"]]["dag"]["tasks"]
    }
    assert dag == {
        "phase-1-api-api-models": [],
        "phase-1-api-api-routes": ["phase-1-api-api-models", "phase-1-ui-ui-shell"],
        "phase-1-ui-ui-shell": [],
        "phase-1-ops-ops-ci": ["phase-1-api-api-models"],
    }
    for name in dag:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [templates[name]["container"]],
                     "volumes": templates[name]["volumes"]},
        }  # fmt: skip
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_no_headless_stream_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    text = (project / "workstreams" / "phase-1.yaml").read_text()
    text = text.replace("run: anthropic", "run: shell").replace("run: claude", "run: shell")
    text = text.replace("agent: {kind: codex}", "agent: ops-dev")
    (project / "workstreams" / "phase-1.yaml").write_text(text)
    done = coditect(project, "export", "k8s", "-o", str(tmp_path / "none"))
    assert done.code == 2
    assert "no task with a headless agent" in done.output
    assert not (tmp_path / "none").exists()
