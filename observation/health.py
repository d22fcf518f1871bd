"""Whether the control plane works again after a fault, as Dagster shows it: the daemons' heartbeats, the
storages answering."""

from __future__ import annotations

from common.waits import Observation
from dagster_api import DagsterApiError, DagsterWebserver


def daemons_fresh_since(webserver: DagsterWebserver, since: float) -> Observation[str]:
    """Every required daemon healthy with a heartbeat after ``since`` (epoch seconds)."""
    required = [s for s in webserver.daemon_statuses() if s.required]
    stale = [s.daemon_type for s in required if not s.healthy or (s.last_heartbeat_time or 0) <= since]
    return Observation(not stale, f"stale or unhealthy: {', '.join(stale) or 'none'}", f"{len(required)} fresh")


def storage_answers(webserver: DagsterWebserver, run_id: str | None, errors: list[str]) -> Observation[None]:
    """The run storage (a runs query) and the event log storage (a run's events: ``run_id``'s, else the newest
    run's) both answer; each error is kept in ``errors``: it is what a user sees (the webserver's pooled connection
    fails once per storage after PostgreSQL restarts)."""
    try:
        newest = webserver.runs(limit=1)
        if run_id or newest:
            webserver.run_event_page(run_id or newest[0].run_id, limit=1)
    except DagsterApiError as exc:
        errors.append(str(exc).splitlines()[0][:300])
        raise
    return Observation(True, "runs and events answered")
