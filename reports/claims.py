"""Short titles of the design card's claims, for the conformance matrix and report titles.

Kept in the repo (not parsed from the design card at run time) because the card lives outside it.
"""

from __future__ import annotations

CLAIMS: dict[str, str] = {
    "C1": "Control plane runs as Deployments; the instance is a ConfigMap",
    "C2": "Every run is a dagster-run-<run_id> Job that reaches Complete",
    "C3": "A run in flight finishes SUCCESS while the control plane is killed",
    "C4": "Webserver replicas keep answering GraphQL while one is killed",
    "C5": "The daemon is restarted and resumes heartbeats, queues, schedules, sensors",
    "C6": "K8sRunLauncher + multiprocess: one Job per run, steps as processes",
    "C7": "k8s_job_executor: one dagster-step Job per step with this run's step args",
    "C8": "Celery: step pods bounded by worker concurrency; worker kill as documented",
    "C9": "Instance defaults, job tags and op_tags reach run and step pods",
    "C10": "Env vars (plain, ConfigMap, Secret) reach run, step and external pods",
    "C11": "Each code location's image runs its pods; images never mix",
    "C12": "Run retries come from Dagster, not Kubernetes (backoffLimit 0)",
    "C13": "Op RetryPolicy retries a step, also in its own Job",
    "C14": "Run monitoring fails or resumes a run whose pod was killed",
    "C15": "External job stdout/stderr visible through Dagster",
    "C16": "No plaintext credential in pods; reports redacted",
    "C17": "A terminated run ends CANCELED and leaves nothing of it running",
    "C18": "A run that cannot start fails in time, naming why, and is cleaned up",
    "C19": "A step pod that cannot start fails its step in time; the run never hangs",
    "C20": "An OOMKilled run worker fails its run in time, naming OOMKilled",
    "C21": "A step pod killed mid-step fails its step in time (backoffLimit 0)",
    "C22": "Run and step Jobs carry a TTL (a tag overrides it) and are removed after it",
    "C23": "Runs survive the apiserver unavailable for ~45 s; the daemon heartbeats again",
    "C24": "Work asked of a code location while its server is down happens once it is back",
    "C25": "Never two daemons at once while the daemon is replaced; no run launched twice",
    "C26": "PostgreSQL restarts: a short outage fails no run, a long one never hangs one",
    "C27": "A run over its max runtime ends FAILURE in time and leaves nothing running",
    "C28": "The Celery broker restarted or stopped mid-run: the run never hangs",
    "C29": "A run cut off from PostgreSQL ends within its max runtime, never hangs",
    "C30": "A run whose node is drained is resumed elsewhere or ends FAILURE in time",
    "C31": "One code location's env never reaches another location's pods",
}


def claim_number(claim: str) -> int:
    """``"C10"`` -> 10, so claims sort numerically rather than as text (C10 after C9)."""
    return int(claim.lstrip("Cc"))
