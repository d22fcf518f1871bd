"""A run pod cut off from PostgreSQL (C29), and the proof that the partition holds: a connect from the run pod
fails while one from a pod outside the run succeeds.

Two ways to cut it off. On a cluster whose nodes are on this machine (local, kind), a firewall rule in the run
pod's node drops what the pod sends to PostgreSQL's pod: a pod's packets cross its node's FORWARD chain (routed by
kind's ptp network, bridged with bridge-nf-call-iptables on the local one). Elsewhere, a NetworkPolicy: egress for
the run pod to everything but the database pod's address (an ingress policy on PostgreSQL would also have to let
the kubelet's readiness probe through, which implementations treat differently); a cluster that enforces none
is named (NotEnforced). kube-network-policies, kindnetd's enforcer, cannot run on this machine: its kernel has
nf_tables without the queue expression.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kubernetes import client

from common.record import attach_json, step
from common.waits import Observation, WaitTimeout, wait_for
from deploy import names

POLICY_PREFIX = "dkc-cut-off"
CONNECT_SECONDS = 3
# Exit 0: connected; 1: the connect failed (its error on stdout). Python is in every Dagster image.
CONNECT_PROBE = ("import socket, sys\n"
                 "try:\n"
                 "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
                 "except OSError as exc:\n"
                 "    print(f'{type(exc).__name__}: {exc}'); sys.exit(1)\n"
                 "print('connected')\n")


class NotEnforced(Exception):
    """The policy is in place but a connect through it still succeeds: the cluster enforces no NetworkPolicy."""


@dataclass(frozen=True)
class Connect:
    pod: str
    connected: bool
    said: str


@dataclass(frozen=True)
class Partition:
    """Proof of the partition: the cut-off pod's failed connect and the outside pod's successful one."""

    policy: str
    cut_off: Connect
    outside: Connect
    proven_at: float  # epoch seconds


class CutOffFailed(Exception):
    """The firewall rule could not be added (its command's own error)."""


def drop_rule(action: str, source: str, target: str, tag: str) -> list[str]:
    """iptables' argv adding (``-I``) or deleting (``-D``) the FORWARD rule dropping ``source`` -> ``target``."""
    position = ["1"] if action == "-I" else []
    return ["iptables", "-w", "5", action, "FORWARD", *position, "-s", f"{source}/32", "-d", f"{target}/32",
            "-m", "comment", "--comment", tag, "-j", "DROP"]


@contextmanager
def firewalled(in_node: Callable[[list[str]], list[str]], node: str, source: str, target: str,
               tag: str) -> Iterator[str]:
    """What ``source`` (a pod on ``node``) sends to ``target`` is dropped in the node for the block; ``in_node`` makes
    a command run in the node's network (Provider.node_network_command). Yields a line naming the rule."""
    what = f"iptables FORWARD rule on node {node} dropping {source} -> {target}"
    with step(f"Fault: {what}"):
        added = subprocess.run(in_node(drop_rule("-I", source, target, tag)), capture_output=True, text=True)
        if added.returncode != 0:
            raise CutOffFailed(f"could not add the {what}: {(added.stderr or added.stdout).strip()[-300:]}")
    try:
        yield what
    finally:
        subprocess.run(in_node(drop_rule("-D", source, target, tag)), capture_output=True, text=True)


def cut_off_policy(name: str, run_id: str, address: str) -> client.V1NetworkPolicy:
    """Egress for the run's pod (its Job's label): anywhere but ``address`` (PostgreSQL's pod)."""
    return client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"job-name": names.run_job_name(run_id)}),
            policy_types=["Egress"],
            egress=[client.V1NetworkPolicyEgressRule(to=[client.V1NetworkPolicyPeer(
                ip_block=client.V1IPBlock(cidr="0.0.0.0/0", _except=[f"{address}/32"]))])]))


@contextmanager
def policy_cut_off(networking: client.NetworkingV1Api, namespace: str, run_id: str, address: str) -> Iterator[str]:
    """The run's pod cut off from ``address`` by a NetworkPolicy for the block; yields a line naming it."""
    name = f"{POLICY_PREFIX}-{run_id[:8]}"
    with step(f"Fault: NetworkPolicy {namespace}/{name} cuts run {run_id}'s pod off from {address}"):
        networking.create_namespaced_network_policy(namespace, cut_off_policy(name, run_id, address))
    try:
        yield f"NetworkPolicy {namespace}/{name}"
    finally:
        try:
            networking.delete_namespaced_network_policy(name, namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def connect(api: client.ApiClient, namespace: str, pod: str, container: str | None, host: str, port: int) -> Connect:
    """A TCP connect to ``host:port`` from inside ``pod`` (through the Kubernetes exec API)."""
    from kubernetes.stream import stream  # it patches the client it is given: a client of its own

    command = ["python", "-c", CONNECT_PROBE, host, str(port), str(CONNECT_SECONDS)]
    with client.ApiClient(api.configuration) as own:
        session = stream(client.CoreV1Api(own).connect_get_namespaced_pod_exec, pod, namespace, container=container,
                         command=command, stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False,
                         _request_timeout=CONNECT_SECONDS + 20)
        session.run_forever(timeout=CONNECT_SECONDS + 15)
        said = (session.read_stdout() + session.read_stderr()).strip()
        code = session.returncode
    if code is None:
        raise RuntimeError(f"the connect probe in pod {namespace}/{pod} did not finish: {said or 'no output'}")
    return Connect(pod, code == 0, said.splitlines()[-1] if said else f"exit {code}")


def prove(api: client.ApiClient, namespace: str, policy: str, cut: tuple[str, str | None],
          outside: tuple[str, str | None], host: str, port: int, timeout: float = 60) -> Partition:
    """Until a connect from the ``cut`` pod (name, container) to ``host:port`` fails while one from ``outside``
    succeeds; NotEnforced if the cut-off pod still connects at the deadline."""
    last: list[Connect] = []

    def look() -> Observation[tuple[Connect, Connect]]:
        inside = connect(api, namespace, *cut, host, port)
        other = connect(api, namespace, *outside, host, port)
        last[:] = [inside]
        return Observation(not inside.connected and other.connected,
                           f"from {inside.pod}: {inside.said}; from {other.pod}: {other.said}", (inside, other))

    with step(f"Proof of fault: a connect to {host}:{port} fails from {cut[0]} and succeeds from {outside[0]}"):
        try:
            seen = wait_for(f"the partition of {cut[0]} from {host}:{port}", look, timeout, 2.0)
        except WaitTimeout as exc:
            if last and last[0].connected:
                raise NotEnforced(f"{policy} is in place but {cut[0]} still connects to {host}:{port} after "
                                  f"{timeout:.0f}s: the cluster does not enforce it") from exc
            raise
        assert seen is not None
        inside, other = seen
        proof = Partition(policy, inside, other, time.time())
        attach_json("proof of fault", {"policy": policy, "target": f"{host}:{port}",
                                       "cut off": vars(inside), "outside": vars(other)})
    return proof
