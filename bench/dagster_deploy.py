"""Figures for Dagster on the local cluster: deploy time per combination, launch → RUN_SUCCESS latency
of a one-op job, control-plane memory. Target (from the issue): a one-op run <= 10 s from launch to
SUCCESS. Prints figures; asserts nothing. Needs a running cluster (`./dkc up`).
"""

from __future__ import annotations

import argparse
import secrets
import time
from pathlib import Path

from kubernetes import client

from bench.figures import print_figures
from clusters import ProviderOptions, get_provider
from clusters.readiness import api_client
from deploy.bringup import deploy, teardown
from deploy.images import build_and_load, code_locations
from deploy.settings import COMBINATIONS, DeploymentSettings
from images.dagster import DAGSTER_VERSION

PING_JOB = {"k8s-multiprocess": "ping_multiprocess", "k8s-job": "ping_k8s", "celery-k8s": "ping_celery"}


def pod_memory_mib(api: client.ApiClient, namespace: str) -> float:
    """Sum of the working sets the kubelet reports for the namespace's pods (its summary API)."""
    core = client.CoreV1Api(api)
    node = core.list_node().items[0].metadata.name
    summary = api.call_api(f"/api/v1/nodes/{node}/proxy/stats/summary", "GET", auth_settings=["BearerToken"],
                           response_types_map={200: "object"}, _return_http_data_only=True)
    total = 0
    for pod in summary.get("pods", []):
        if pod["podRef"]["namespace"] == namespace:
            total += sum(c.get("memory", {}).get("workingSetBytes", 0) for c in pod.get("containers", []))
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cluster-name", default="dkc")
    parser.add_argument("--combination", action="append", choices=COMBINATIONS)
    parser.add_argument("--runs", type=int, default=3, help="runs per combination for the latency figure")
    args = parser.parse_args()

    provider = get_provider("local", ProviderOptions(name=args.cluster_name))
    api = api_client(Path(provider.kubeconfig()))
    figures: list[tuple[str, str]] = []
    for combination in args.combination or COMBINATIONS:
        images, locations = build_and_load(lambda ref, archive: (provider.load_image(archive), ref)[1],
                                           DAGSTER_VERSION, celery=combination == "celery-k8s")
        cfg = DeploymentSettings(combination=combination, namespace=f"dkc-bench-{combination}", images=images,
                                 code_locations=code_locations(locations), postgres_password=secrets.token_urlsafe(18))
        started = time.monotonic()
        deployment = deploy(api, cfg)
        figures.append((f"{combination}: deploy to ready", f"{time.monotonic() - started:.1f} s"))
        try:
            latencies = []
            for _ in range(args.runs):
                started = time.monotonic()
                run_id = deployment.webserver.launch_run(PING_JOB[combination], locations[0][0])
                deployment.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=300, interval=0.2)
                latencies.append(time.monotonic() - started)
            figures.append((f"{combination}: launch -> SUCCESS (one op, {args.runs} runs)",
                            f"min {min(latencies):.1f} s, median {sorted(latencies)[len(latencies) // 2]:.1f} s"))
            memory = pod_memory_mib(api, cfg.namespace)
            figures.append((f"{combination}: control-plane working set", f"{memory:.0f} MiB"))
        finally:
            teardown(api, cfg)

    print_figures(figures)


if __name__ == "__main__":
    main()
