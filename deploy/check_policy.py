"""Deployment rules that schemas cannot express, checked on rendered manifests.

Usage (from .ci/deploy-check):
    python deploy/check_policy.py k8s RENDERED.yaml [--secret-external]
    python deploy/check_policy.py compose CONFIG.yaml

Prints one line per finding and exits 1 if there is any.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import yaml

Manifest = dict[str, Any]


def _pod_specs(objects: list[Manifest]) -> Iterator[tuple[str, Manifest, Manifest]]:
    """Yields (kind/name, pod metadata, pod spec) of every workload."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            template = obj["spec"]["template"]
            yield f"{obj['kind']}/{obj['metadata']['name']}", template["metadata"], template["spec"]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(objects: list[Manifest], secret_external: bool) -> list[str]:
    """Returns the findings in one rendered kustomization."""
    findings: list[str] = []
    by_kind: dict[str, list[Manifest]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    pods = list(_pod_specs(objects))

    for where, _, spec in pods:
        pod_sc = spec.get("securityContext", {})
        if pod_sc.get("runAsNonRoot") is not True:
            findings.append(f"{where}: pod securityContext.runAsNonRoot is not true")
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            findings.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            findings.append(f"{where}: automountServiceAccountToken is not false")
        for c in spec["containers"]:
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                findings.append(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                findings.append(f"{cw}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                findings.append(f"{cw}: capabilities do not drop ALL")
            res = c.get("resources", {})
            if not res.get("requests", {}).get("cpu") or not res.get("limits", {}).get("memory"):
                findings.append(f"{cw}: needs a cpu request and a memory limit")
            image = c.get("image", "")
            if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
                findings.append(f"{cw}: image {image!r} is not pinned to a tag")
            for ref in c.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    external = kind == "Secret" and secret_external
                    if key in ref and (kind, ref[key]["name"]) not in names and not external:
                        findings.append(f"{cw}: {kind} {ref[key]['name']} is not rendered")
            args = c.get("args", [])
            if args[:1] == ["serve"]:
                if "--no-migrate" not in args:
                    findings.append(f"{cw}: `serve` without --no-migrate races the migrate Job")
                probes = {
                    p: c.get(p, {}).get("httpGet", {}).get("path")
                    for p in ("livenessProbe", "readinessProbe")
                }
                if probes != {"livenessProbe": "/livez", "readinessProbe": "/readyz"}:
                    findings.append(f"{cw}: probes must be /livez (liveness), /readyz (readiness)")

    migrate_jobs = [
        w
        for w, _, s in pods
        if w.startswith("Job/")
        and any(c.get("args", [])[:1] == ["migrate"] for c in s["containers"])
    ]
    if len(migrate_jobs) != 1:
        findings.append(f"expected exactly one migrate Job, found {migrate_jobs}")

    pod_labels = [m.get("labels", {}) for _, m, _ in pods]
    for kind in ("PodDisruptionBudget", "Service", "NetworkPolicy"):
        for obj in by_kind.get(kind, []):
            spec = obj["spec"]
            sel = (
                spec.get("selector", {})
                if kind == "Service"
                else (
                    spec.get("podSelector" if kind == "NetworkPolicy" else "selector", {}).get(
                        "matchLabels", {}
                    )
                )
            )
            if not any(_matches(sel, labels) for labels in pod_labels):
                findings.append(f"{kind}/{obj['metadata']['name']}: selector {sel} matches no pod")

    for pol in by_kind.get("NetworkPolicy", []):
        spec = pol["spec"]
        egress = {p.get("port") for rule in spec.get("egress", []) for p in rule.get("ports", [])}
        for port in (53, 443, 5432):
            if port not in egress:
                findings.append(f"NetworkPolicy/{pol['metadata']['name']}: no egress to {port}")
        if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
            findings.append(f"NetworkPolicy/{pol['metadata']['name']}: must govern both ways")
    if not by_kind.get("NetworkPolicy"):
        findings.append("no NetworkPolicy rendered")

    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        target = hpa["spec"]["scaleTargetRef"]
        if (target["kind"], target["name"]) not in names:
            findings.append(f"HorizontalPodAutoscaler/{hpa['metadata']['name']}: no target")
        for dep in by_kind.get("Deployment", []):
            if dep["metadata"]["name"] == target["name"] and "replicas" in dep["spec"]:
                findings.append(f"Deployment/{target['name']}: sets replicas the HPA owns")
    return findings


def check_compose(config: Manifest) -> list[str]:
    """Returns the findings in a `docker-compose config` output."""
    findings: list[str] = []
    services: dict[str, Manifest] = config["services"]
    for name in ("postgres", "migrate", "api", "worker"):
        if name not in services:
            findings.append(f"compose: no {name} service")
    if findings:
        return findings
    if services["migrate"].get("command") != ["migrate"]:
        findings.append("compose: migrate service must run `migrate`")
    for name in ("api", "worker"):
        svc = services[name]
        cmd = svc.get("command", [])
        if cmd[:1] != ["serve"] or "--no-migrate" not in cmd or name not in cmd:
            findings.append(f"compose: {name} must run `serve --role {name} --no-migrate`")
        cond = svc.get("depends_on", {}).get("migrate", {}).get("condition")
        if cond != "service_completed_successfully":
            findings.append(f"compose: {name} must wait for migrate to complete")
        if svc.get("read_only") is not True:
            findings.append(f"compose: {name} root filesystem is not read-only")
    return findings


def main(argv: list[str]) -> int:
    mode, path, *flags = argv
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if mode == "k8s":
        findings = check_k8s(docs, secret_external="--secret-external" in flags)
    elif mode == "compose":
        findings = check_compose(docs[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    for finding in findings:
        print(f"{path}: {finding}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
