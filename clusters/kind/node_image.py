"""A kind node image built without a registry or a Dockerfile: Debian + systemd + containerd, our Kubernetes build,
and every image kubeadm needs already in the node, so nothing is ever pulled.

kind's own node image is its base image (kind's module carries the recipe: images/base) plus what ``kind build
node-image`` adds (kubeadm, kubelet, kubectl, /kind/version, the CNI and storage manifests, the control-plane images
pulled from registry.k8s.io). Here the same shape comes from the package registries alone:

- the root filesystem is Debian bookworm with systemd and Debian's containerd, runc and CNI plugins;
- kind's entrypoint, kubelet units and scripts are read from kind's module at build time;
- the control-plane images (apiserver, controller-manager, scheduler, kube-proxy, etcd, CoreDNS, pause) are made
  from our own builds under the names ``kubeadm config images list`` gives, kept in /kind/images and imported into
  containerd by a unit ordered before the kubelet;
- the CNI is a unit of ours instead of kindnetd (not served by the Go module proxy): it writes a ptp + host-local
  config for the node's podCIDR and routes the other nodes' podCIDRs to them.

The result is one Docker-loadable archive, cached by its inputs like every other image.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from clusters.local import build
from common.errors import BuildError
from common.progress import phase, say
from images import oci
from images.cache import inputs_key, lock
from images.rootfs import debian_rootfs

KIND_VERSION = "v0.33.0"
# Bump when what goes into a node image changes, so cached node images are built again.
NODE_IMAGE_REVISION = "1"
NODE_PACKAGES = (
    "systemd", "dbus", "containerd", "runc", "containernetworking-plugins", "conntrack", "iptables", "nftables",
    "iproute2", "ethtool", "util-linux", "mount", "kmod", "libseccomp2", "pigz", "bash", "ca-certificates", "procps",
    "e2fsprogs", "socat", "jq",
)
# kubeadm's static pods name their command without a path.
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KUBE_PROXY_PACKAGES = ("iptables", "conntrack", "kmod")
# Debian units a Kubernetes node has no use for (timers that run apt, a getty on a tty nobody has): masked.
MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service",
    "fstrim.timer", "getty@tty1.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
)
# kind's base files we take as they are (paths under images/base/files in kind's module).
KIND_FILES = (
    ("usr/local/bin/entrypoint", 0o755), ("usr/local/bin/clean-install", 0o755),
    ("kind/bin/mount-product-files.sh", 0o755), ("kind/bin/undo-mount-hacks.sh", 0o755),
    ("kind/bin/create-kubelet-cgroup-v2.sh", 0o755),
    ("etc/systemd/system/kubelet.service", 0o644), ("etc/systemd/system/kubelet.slice", 0o644),
    ("etc/systemd/system/undo-mount-hacks.service", 0o644),
    ("etc/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o644),
    ("etc/systemd/system/kubelet.service.d/11-kind.conf", 0o644),
    ("etc/default/kubelet", 0o644), ("etc/crictl.yaml", 0o644),
    ("etc/sysctl.d/10-network-magic.conf", 0o644), ("etc/sysctl.d/10-network-security.conf", 0o644),
)
ENABLED_UNITS = ("kubelet.service", "undo-mount-hacks.service", "dkc-images.service")  # and Debian's containerd

IMAGES_UNIT = """\
[Unit]
Description=Import the control-plane images kept in /kind/images into containerd (nothing is pulled)
After=containerd.service
Requires=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -euc 'for archive in /kind/images/*.tar; do \
  ctr -n k8s.io images import --all-platforms "$archive"; done'

[Install]
WantedBy=multi-user.target
"""
KUBELET_AFTER_IMAGES = """\
[Unit]
After=dkc-images.service
Wants=dkc-images.service
"""
# The pod network, run by a DaemonSet (a node's own credentials may read only its own Node): for its node it writes
# the CNI config once the controller-manager has given the node a podCIDR; for every other node it routes that
# node's podCIDR to the node's address.
PODNET_SCRIPT = """\
#!/bin/bash
set -euo pipefail
template='{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\\n"}'
kubectl get nodes --watch -o jsonpath="$template" | while read -r name cidr address; do
  [ -n "$cidr" ] || continue
  if [ "$name" = "$NODE_NAME" ]; then
    printf '%s\\n' '{"cniVersion": "0.4.0", "name": "dkc", "plugins": [' \\
      '{"type": "ptp", "mtu": 1500, "ipMasq": false,' \\
      ' "ipam": {"type": "host-local", "ranges": [[{"subnet": "'"$cidr"'"}]], "routes": [{"dst": "0.0.0.0/0"}]}},' \\
      '{"type": "portmap", "capabilities": {"portMappings": true}}]}' > /etc/cni/net.d/.10-dkc.conflist
    mv /etc/cni/net.d/.10-dkc.conflist /etc/cni/net.d/10-dkc.conflist
  elif [ -n "$address" ]; then
    ip route replace "$cidr" via "$address"
  fi
done
"""
PODNET_PACKAGES = ("iproute2",)
# kind applies this after kubeadm init in place of kindnetd's manifest (kindnetd is not served by the Go proxy).
CNI_MANIFEST = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: dkc-podnet, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: dkc-podnet}
rules:
  - {apiGroups: [""], resources: [nodes], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: dkc-podnet}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: dkc-podnet}
subjects: [{kind: ServiceAccount, name: dkc-podnet, namespace: kube-system}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: dkc-podnet, namespace: kube-system, labels: {app: dkc-podnet}}
spec:
  selector: {matchLabels: {app: dkc-podnet}}
  template:
    metadata: {labels: {app: dkc-podnet}}
    spec:
      hostNetwork: true
      serviceAccountName: dkc-podnet
      priorityClassName: system-node-critical
      tolerations: [{operator: Exists}]
      containers:
        - name: podnet
          image: {image}
          imagePullPolicy: Never
          command: [/usr/local/bin/dkc-podnet]
          env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
          securityContext: {capabilities: {add: [NET_ADMIN]}}
          resources: {requests: {cpu: 10m, memory: 20Mi}}
          volumeMounts: [{name: cni, mountPath: /etc/cni/net.d}]
      volumes: [{name: cni, hostPath: {path: /etc/cni/net.d, type: DirectoryOrCreate}}]
"""
STORAGE_MANIFEST = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"""


@dataclass(frozen=True)
class NodeImage:
    reference: str
    archive: Path


def kind_build(version: str = KIND_VERSION) -> build.GoBuild:
    build.validate_version(version, "kind")
    return build.GoBuild(name="kind", module="sigs.k8s.io/kind", version=version, binaries={"kind": "sigs.k8s.io/kind"})


def kind_module_dir(version: str = KIND_VERSION) -> Path:
    """kind's module source (its base image recipe is under images/base), from the Go module cache."""
    proc = subprocess.run(["go", "mod", "download", "-json", f"sigs.k8s.io/kind@{version}"],
                          capture_output=True, text=True)
    try:
        return Path(json.loads(proc.stdout)["Dir"])
    except (ValueError, KeyError) as exc:
        raise BuildError(f"cannot download sigs.k8s.io/kind@{version}: {proc.stderr.strip()[-200:]}") from exc


def kubeadm_images(kubeadm: Path, k8s_version: str) -> dict[str, str]:
    """Component -> the image name kubeadm uses for it (registry.k8s.io/...), e.g. 'etcd' -> '.../etcd:3.6.5-0'."""
    proc = subprocess.run([str(kubeadm), "config", "images", "list", "--kubernetes-version", k8s_version],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"kubeadm config images list failed: {proc.stderr.strip()[-200:]}")
    return parse_image_list(proc.stdout)


def parse_image_list(text: str) -> dict[str, str]:
    """``kubeadm config images list`` output keyed by the last path element without its tag."""
    images = {}
    for line in text.split():
        name = line.rsplit("/", 1)[-1].split(":", 1)[0]
        images[name] = line
    return images


def containerd_config(kind_config: str, sandbox_image: str) -> str:
    """kind's containerd config with the sandbox image kubeadm names, and oom_score_adj kept within what this
    machine allows (it withholds CAP_SYS_RESOURCE, so the kubelet's -998 for sandboxes would fail in runc)."""
    lines = []
    for line in kind_config.splitlines():
        stripped = line.strip()
        if stripped.startswith("sandbox_image"):
            line = f'  sandbox_image = "{sandbox_image}"'
        elif stripped.startswith("restrict_oom_score_adj"):
            line = "  restrict_oom_score_adj = true"
        lines.append(line)
    return "\n".join(lines) + "\n"


def cri_base_spec(default_spec: dict) -> dict:
    """kind's base runtime spec: containerd's default with kind's product-files hook and no rlimits."""
    spec = json.loads(json.dumps(default_spec))
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    return spec


def _binary_image(reference: str, binary: Path, path: str, entrypoint: list[str] | None = None,
                  base_layers: tuple[Path, ...] = ()) -> tuple[str, Path]:
    spec = oci.ImageSpec(name=reference, entrypoint=entrypoint or [],
                         env={"PATH": IMAGE_PATH})

    def layer(out: Path) -> None:
        oci.write_layer_from_files([(path, binary, 0o755)], out)

    return spec.reference, oci.cached_image(spec, [binary.parent.name, path], layer, base_layers=base_layers)


def component_images(k8s_version: str) -> dict[str, tuple[str, Path]]:
    """Component -> (reference, archive) of every image the node runs: kubeadm's, named as kubeadm names them,
    each built from our own binaries, and the pod network's."""
    k8s = build.ensure_built(build.kubernetes_build(k8s_version))
    kubeadm = build.ensure_built(build.kubeadm_build(k8s_version)) / "kubeadm"
    names = kubeadm_images(kubeadm, k8s_version)
    etcd = build.ensure_built(build.etcd_build()) / "etcd"
    coredns = build.ensure_built(build.coredns_build()) / "coredns"
    pause = build.ensure_built(build.pause_build()) / "pause"
    proxy_base = debian_rootfs("kube-proxy", KUBE_PROXY_PACKAGES)
    made = {name: _binary_image(names[name], k8s / name, f"/usr/local/bin/{name}")
            for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    made["kube-proxy"] = _binary_image(names["kube-proxy"], k8s / "kube-proxy", "/usr/local/bin/kube-proxy",
                                       base_layers=(proxy_base,))
    # etcd and CoreDNS are our pinned builds under the tags kubeadm expects for this Kubernetes version.
    made["etcd"] = _binary_image(names["etcd"], etcd, "/usr/local/bin/etcd")
    made["coredns"] = _binary_image(names["coredns"], coredns, "/coredns", entrypoint=["/coredns"])
    made["pause"] = _binary_image(names["pause"], pause, "/pause", entrypoint=["/pause"])
    made["dkc-podnet"] = _podnet_image(k8s / "kubectl")
    return made


def _podnet_image(kubectl: Path) -> tuple[str, Path]:
    base = debian_rootfs("kind-podnet", PODNET_PACKAGES)
    script = PODNET_SCRIPT.encode()
    spec = oci.ImageSpec(name=f"local/dkc-podnet:{inputs_key(script, kubectl.parent.name)}",
                         env={"PATH": IMAGE_PATH})

    def layer(out: Path) -> None:
        oci.write_layer_from_files([("/usr/local/bin/kubectl", kubectl, 0o755),
                                    ("/usr/local/bin/dkc-podnet", script, 0o755)], out)

    return spec.reference, oci.cached_image(spec, [kubectl.parent.name], layer, base_layers=(base,))


def _default_runtime_spec() -> dict:
    proc = subprocess.run(["ctr", "oci", "spec"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"ctr oci spec failed: {proc.stderr.strip()[-200:]} (apt-get install containerd)")
    return json.loads(proc.stdout)


def _node_files(k8s_version: str, kind_dir: Path, images: dict[str, tuple[str, Path]]) -> tuple[list, list]:
    """(files, links) of the layer that turns the Debian root filesystem into a kind node."""
    k8s = build.ensure_built(build.kubernetes_build(k8s_version))
    kubeadm = build.ensure_built(build.kubeadm_build(k8s_version)) / "kubeadm"
    base = kind_dir / "images" / "base" / "files"
    files: list[tuple[str, Path | bytes, int]] = [(f"/{path}", base / path, mode) for path, mode in KIND_FILES]
    kind_containerd = (base / "etc" / "containerd" / "config.toml").read_text()
    files += [
        ("/etc/containerd/config.toml", containerd_config(kind_containerd, images["pause"][0]).encode(), 0o644),
        ("/etc/containerd/cri-base.json", json.dumps(cri_base_spec(_default_runtime_spec()), indent=2).encode(),
         0o644),
        ("/usr/bin/kubeadm", kubeadm, 0o755), ("/usr/bin/kubelet", k8s / "kubelet", 0o755),
        ("/usr/bin/kubectl", k8s / "kubectl", 0o755),
        ("/kind/version", f"{k8s_version}\n".encode(), 0o644),
        ("/kind/manifests/default-cni.yaml", CNI_MANIFEST.replace("{image}", images["dkc-podnet"][0]).encode(),
         0o644),
        ("/kind/manifests/default-storage.yaml", STORAGE_MANIFEST.encode(), 0o644),
        ("/etc/systemd/system/dkc-images.service", IMAGES_UNIT.encode(), 0o644),
        ("/etc/systemd/system/kubelet.service.d/20-dkc-images.conf", KUBELET_AFTER_IMAGES.encode(), 0o644),
        ("/etc/kubernetes/manifests/.keep", b"", 0o644),
        ("/etc/systemd/journald.conf.d/kind.conf", b"[Journal]\nReadKMsg=no\n", 0o644),
    ]
    files += [(f"/kind/images/{name}.tar", archive, 0o644) for name, (_, archive) in sorted(images.items())]
    links = [("/sbin/init", "/lib/systemd/systemd")]
    links += [(f"/etc/systemd/system/{unit}", "/dev/null") for unit in MASKED_UNITS]
    links += [(f"/etc/systemd/system/multi-user.target.wants/{unit}", f"/etc/systemd/system/{unit}")
              for unit in ENABLED_UNITS]
    links += [(f"/opt/cni/bin/{plugin}", f"/usr/lib/cni/{plugin}") for plugin in ("host-local", "loopback", "ptp",
                                                                                   "portmap")]
    return files, links


def node_image(k8s_version: str, kind_version: str = KIND_VERSION) -> NodeImage:
    """The node image for ``k8s_version`` as a ``docker load`` archive, from the cache or built now."""
    images = component_images(k8s_version)
    rootfs = debian_rootfs("kind-node", NODE_PACKAGES)
    kind_dir = kind_module_dir(kind_version)
    files, links = _node_files(k8s_version, kind_dir, images)
    inputs = [NODE_IMAGE_REVISION, kind_version, rootfs.name, *(archive.name for _, archive in images.values()),
              json.dumps(links), inputs_key(*(source if isinstance(source, bytes) else str(source).encode()
                                              for _, source, _ in files))]
    # The tag names the inputs, so a rebuilt node image never hides behind an older one of the same version.
    spec = oci.ImageSpec(name=f"local/kind-node:{k8s_version}-{inputs_key(*inputs)}",
                         entrypoint=["/usr/local/bin/entrypoint", "/sbin/init"], env={"container": "docker"})

    def layer(out: Path) -> None:
        oci.write_layer_from_files(files, out, links=links)

    archive = oci.cached_image(spec, inputs, layer, base_layers=(rootfs,))
    return NodeImage(reference=spec.reference, archive=archive)


def docker_load(image: NodeImage, docker_env: dict[str, str] | None = None) -> None:
    """Load the node image into Docker unless an image of that name with the same config is already there."""
    with lock(f"docker-load-{image.archive.name}"), phase(f"Loading {image.reference} into Docker"):
        proc = subprocess.run(["docker", "load", "-i", str(image.archive)], capture_output=True, text=True,
                              env=docker_env)
        if proc.returncode != 0:
            raise BuildError(f"docker load {image.archive.name} failed: {proc.stderr.strip()[-300:]}")
        say(f"  {proc.stdout.strip()}")

