"""Watching Kubernetes objects until they reach a state, with a deadline and the last state seen."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch

from common.waits import Observation, TerminalState, WaitTimeout, wait_for

Verdict = Callable[[Any], bool]


def watch_until(
    list_call: Callable[..., Any],
    description: str,
    done: Verdict,
    timeout: float,
    describe: Callable[[Any], str] = lambda obj: obj.metadata.name,
    **list_kwargs: Any,
) -> Any:
    """Watch ``list_call`` (e.g. ``CoreV1Api.list_namespaced_pod``) until ``done(obj)`` holds for an object.

    ``done`` may raise ``TerminalState`` to stop early. The watch is restarted if the server closes it,
    until the deadline; on timeout the error names the last state seen.
    """
    deadline = time.monotonic() + timeout
    last_seen = "no event yet"

    def current() -> tuple[Any, str]:
        """The object already done in a fresh listing, or None, and the listing's resource version."""
        nonlocal last_seen
        listing = list_call(**list_kwargs, _request_timeout=30)
        for obj in listing.items:
            last_seen = describe(obj)
            if done(obj):
                return obj, listing.metadata.resource_version
        return None, listing.metadata.resource_version

    # The current state first: the object may already be done before the watch starts.
    found, resource_version = current()
    if found is not None:
        return found
    while (remaining := deadline - time.monotonic()) > 0:
        watcher = watch.Watch()
        try:
            for event in watcher.stream(list_call, resource_version=resource_version,
                                        timeout_seconds=max(1, int(remaining)), **list_kwargs):
                obj = event["object"]
                resource_version = obj.metadata.resource_version
                last_seen = f"{event['type']} {describe(obj)}"
                if event["type"] != "DELETED" and done(obj):
                    return obj
        except client.ApiException as exc:
            if exc.status != 410:  # 410 Gone: our resource version expired, list again
                raise
            # What changed while the watch was gone shows only in the new listing: check it too.
            found, resource_version = current()
            if found is not None:
                return found
        finally:
            watcher.stop()
    raise WaitTimeout(description, timeout, last_seen)


@dataclass(frozen=True)
class PodRemoval:
    """A pod's removal as a watch saw it: its first state marked for deletion (the grace period it was given:
    the kubelet's final delete has grace 0) and its last state (its containers' final terminated states)."""

    deleting: client.V1Pod | None
    last: client.V1Pod


def wait_pod_removed(core: client.CoreV1Api, namespace: str, pod: client.V1Pod, timeout: float) -> PodRemoval:
    """Watch ``pod`` (as read earlier: its resource version is where the watch starts, so a removal that already
    happened is replayed) until the API removes it. On a 410 the pod is looked up again: if it is gone by then,
    the states seen so far are what is returned."""
    name, uid = pod.metadata.name, pod.metadata.uid
    deadline = time.monotonic() + timeout
    last, resource_version = pod, pod.metadata.resource_version
    deleting = pod if pod.metadata.deletion_timestamp else None
    while (remaining := deadline - time.monotonic()) > 0:
        watcher = watch.Watch()
        try:
            for event in watcher.stream(core.list_namespaced_pod, namespace=namespace,
                                        field_selector=f"metadata.name={name}", resource_version=resource_version,
                                        timeout_seconds=max(1, int(remaining))):
                obj = event["object"]
                resource_version = obj.metadata.resource_version
                if obj.metadata.uid != uid:  # a new pod of the same name: ours is gone
                    return PodRemoval(deleting, last)
                last = obj
                if deleting is None and obj.metadata.deletion_timestamp:
                    deleting = obj
                if event["type"] == "DELETED":
                    return PodRemoval(deleting, obj)
        except client.ApiException as exc:
            if exc.status != 410:
                raise
            listing = core.list_namespaced_pod(namespace=namespace, field_selector=f"metadata.name={name}",
                                               _request_timeout=30)
            if not any(item.metadata.uid == uid for item in listing.items):
                return PodRemoval(deleting, last)
            resource_version = listing.metadata.resource_version
        finally:
            watcher.stop()
    raise WaitTimeout(f"pod {namespace}/{name} to be removed", timeout, pod_summary(last))


def pod_summary(pod: client.V1Pod) -> str:
    """``name Phase [container: reason]`` — enough to see why a pod is not where we want it."""
    parts = [f"{pod.metadata.name} {pod.status.phase}"]
    for status in pod.status.container_statuses or []:
        state = status.state
        if state.waiting:
            parts.append(f"{status.name}: waiting {state.waiting.reason} {state.waiting.message or ''}".rstrip())
        elif state.terminated:
            parts.append(f"{status.name}: terminated {state.terminated.reason} exit {state.terminated.exit_code}")
    for condition in pod.status.conditions or []:
        if condition.status != "True" and condition.message:
            parts.append(f"{condition.type}: {condition.message}")
    return "; ".join(parts)


def wait_pod_finished(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 120) -> client.V1Pod:
    """Until the pod Succeeded or Failed; an image that cannot be used stops the wait at once."""

    def done(pod: client.V1Pod) -> bool:
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting
            if waiting and waiting.reason in ("ErrImageNeverPull", "InvalidImageName", "CreateContainerError"):
                raise TerminalState(f"pod {namespace}/{name} cannot start: {pod_summary(pod)}")
        return pod.status.phase in ("Succeeded", "Failed")

    return watch_until(core.list_namespaced_pod, f"pod {namespace}/{name} to finish", done, timeout,
                       describe=pod_summary, namespace=namespace, field_selector=f"metadata.name={name}")


def job_summary(job: client.V1Job) -> str:
    conditions = [f"{c.type}={c.status}" for c in job.status.conditions or []]
    return (f"{job.metadata.name} active={job.status.active or 0} succeeded={job.status.succeeded or 0} "
            f"failed={job.status.failed or 0} {' '.join(conditions)}").strip()


def job_condition(job: client.V1Job, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in job.status.conditions or [])


def wait_job_finished(batch: client.BatchV1Api, namespace: str, name: str, timeout: float = 120) -> client.V1Job:
    """Until the Job has a Complete or Failed condition."""
    return watch_until(batch.list_namespaced_job, f"job {namespace}/{name} to finish",
                       lambda job: job_condition(job, "Complete") or job_condition(job, "Failed"), timeout,
                       describe=job_summary, namespace=namespace, field_selector=f"metadata.name={name}")


def deployment_available(api: client.ApiClient, namespace: str, selector: str) -> Observation[None]:
    """Whether every Deployment matching ``selector`` has rolled out its current template with all replicas
    ready (an old pod still serving does not count); if not, why each pod is not."""
    deployments = client.AppsV1Api(api).list_namespaced_deployment(
        namespace, label_selector=selector, _request_timeout=10).items
    if not deployments:
        return Observation(False, f"no Deployment matching {selector} in {namespace}")
    done = all(rolled_out(d) for d in deployments)
    seen = ", ".join(rollout_summary(d) for d in deployments)
    if not done:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector, _request_timeout=10)
        seen += "; pods: " + (" | ".join(pod_summary(p) for p in pods.items) or "none created")
    return Observation(done, seen)


def why_no_pods(node: client.V1Node) -> list[str]:
    """What keeps ordinary pods off ``node`` ("not Ready", "cordoned", "taint <key>"); empty if they may go there."""
    ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    taints = [t.key for t in node.spec.taints or [] if t.effect in ("NoSchedule", "NoExecute")]
    return ((["not Ready"] if not ready else []) + (["cordoned"] if node.spec.unschedulable else [])
            + [f"taint {key}" for key in taints])


def pod_ready(pod: client.V1Pod) -> bool:
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def pod_uids(core: client.CoreV1Api, namespace: str, selector: str) -> dict[str, str]:
    """UID -> name of the pods matching ``selector`` (a replaced pod has a new UID)."""
    return {p.metadata.uid: p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items}


def wait_replacement_ready(core: client.CoreV1Api, namespace: str, selector: str, old_uids: set[str],
                           timeout: float = 180) -> client.V1Pod:
    """Until a Ready pod matching ``selector`` exists whose UID is not one of ``old_uids``."""
    return watch_until(core.list_namespaced_pod, f"a new Ready pod for {selector} in {namespace}",
                       lambda pod: pod.metadata.uid not in old_uids and pod_ready(pod), timeout,
                       describe=pod_summary, namespace=namespace, label_selector=selector)


def wait_gone(read_call: Callable[..., Any], kind: str, namespace: str, name: str, uid: str,
              timeout: float = 120) -> None:
    """Until the object ``name`` with ``uid`` no longer exists (deleted, or replaced by a new UID)."""

    def look() -> Observation[None]:
        try:
            obj = read_call(name, namespace, _request_timeout=10)
        except client.ApiException as exc:
            if exc.status == 404:
                return Observation(True, f"{kind} {name} gone")
            raise
        if obj.metadata.uid != uid:
            return Observation(True, f"{kind} {name} replaced")
        deleting = "being deleted" if obj.metadata.deletion_timestamp else "not being deleted"
        return Observation(False, f"{kind} {name} still there, {deleting}")

    wait_for(f"{kind} {namespace}/{name} ({uid}) to be gone", look, timeout, 1.0)


def rolled_out(deployment: client.V1Deployment) -> bool:
    """Every replica runs the current template and is available, and no old replica is left."""
    status, want = deployment.status, deployment.spec.replicas or 0
    return ((status.observed_generation or 0) >= deployment.metadata.generation
            and (status.updated_replicas or 0) == want and (status.available_replicas or 0) == want
            and (status.replicas or 0) == want)


def rollout_summary(deployment: client.V1Deployment) -> str:
    status = deployment.status
    return (f"{deployment.metadata.name}: {status.updated_replicas or 0} updated, "
            f"{status.available_replicas or 0} available, {status.replicas or 0} in all, "
            f"of {deployment.spec.replicas or 0}")


def rollout_complete(apps: client.AppsV1Api, namespace: str, name: str,
                     settled: Collection[str] = ()) -> Observation[None]:
    """A Deployment has rolled out its current template (see ``rolled_out``) and no pod it replaced is still
    terminating, but those in ``settled`` (known to have stopped working): such a pod may still work (a Celery worker
    that ignores SIGTERM takes tasks until it is killed)."""
    found = apps.read_namespaced_deployment(name, namespace, _request_timeout=10)
    if not rolled_out(found):
        return Observation(False, rollout_summary(found))
    leaving = [pod for pod in terminating_pods(client.CoreV1Api(apps.api_client), namespace,
                                               selector_text(found.spec.selector)) if pod not in settled]
    if leaving:
        return Observation(False, f"{rollout_summary(found)}; still terminating: {', '.join(leaving)}")
    return Observation(True, rollout_summary(found))


def terminating_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[str]:
    """The pods of ``selector`` being deleted (their containers may still run, up to their grace period)."""
    pods = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=10).items
    return [pod.metadata.name for pod in pods if pod.metadata.deletion_timestamp]


def label_selector(labels: dict[str, str]) -> str:
    """``key=value,...`` in a stable order."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


_SET_OPERATORS = {"In": "{key} in ({values})", "NotIn": "{key} notin ({values})", "Exists": "{key}",
                  "DoesNotExist": "!{key}"}


def selector_text(selector: client.V1LabelSelector | None) -> str:
    """A LabelSelector as the API takes it in ``label_selector``: its matchLabels (``key=value``, in a stable
    order), then its matchExpressions (``key in (a,b)``, ``key notin (a)``, ``key``, ``!key``)."""
    if selector is None:
        return ""
    terms = [label_selector(selector.match_labels or {})] if selector.match_labels else []
    for requirement in selector.match_expressions or []:
        values = ",".join(sorted(requirement.values or []))
        terms.append(_SET_OPERATORS[requirement.operator].format(key=requirement.key, values=values))
    return ",".join(terms)


def pods_selector(apps: client.AppsV1Api, namespace: str, deployment_name: str) -> str:
    """A label selector for a Deployment's pods: its own selector (matchLabels and matchExpressions), whatever
    labels the chart or a team chose. Never empty: an empty selector would pick every pod in the namespace."""
    deployment = apps.read_namespaced_deployment(deployment_name, namespace)
    found = selector_text(deployment.spec.selector)
    if not found:
        raise LookupError(f"Deployment {namespace}/{deployment_name} selects its pods by no label: its pods cannot "
                          "be told from the others in the namespace")
    return found


def current_pods_selector(apps: client.AppsV1Api, namespace: str, deployment_name: str) -> str:
    """A label selector for exactly the pods of a Deployment's current ReplicaSet: its matchLabels plus that
    ReplicaSet's pod-template-hash (a chart may label pods with nothing more specific than the release, and a
    pod killed by a test is replaced by the same ReplicaSet)."""
    deployment = apps.read_namespaced_deployment(deployment_name, namespace)
    owned = [rs for rs in apps.list_namespaced_replica_set(namespace).items
             if any(ref.uid == deployment.metadata.uid for ref in rs.metadata.owner_references or [])]
    if not owned:
        raise LookupError(f"Deployment {namespace}/{deployment_name} has no ReplicaSet")
    current = max(owned, key=lambda rs: int((rs.metadata.annotations or {}).get(
        "deployment.kubernetes.io/revision", "0")))
    return label_selector({**(deployment.spec.selector.match_labels or {}),
                           "pod-template-hash": current.metadata.labels["pod-template-hash"]})
