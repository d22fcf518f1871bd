"""The cluster's PKI: one CA, a serving certificate per server, a client certificate per component.

Which identity each component gets decides what RBAC and Node authorization let it do, so the
subjects are data (``client_identities``) that self-tests can check without a cluster.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Identity:
    """A certificate's subject and purpose."""

    file: str  # basename under the PKI directory: <file>.crt / <file>.key
    common_name: str
    organizations: tuple[str, ...] = ()
    server: bool = False
    client: bool = True
    dns_names: tuple[str, ...] = field(default=())
    ips: tuple[str, ...] = field(default=())


def client_identities(node_names: list[str]) -> list[Identity]:
    """Client certificates: who each component is to the apiserver."""
    identities = [
        Identity("admin", "kubernetes-admin", ("system:masters",)),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kube-proxy", "system:kube-proxy"),
        # The apiserver talks to kubelets (logs, exec) with this identity.
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
    ]
    identities += [Identity(f"kubelet-{n}", f"system:node:{n}", ("system:nodes",)) for n in node_names]
    return identities


def serving_identities(node_names: list[str], node_ips: list[str], api_service_ip: str) -> list[Identity]:
    """Serving certificates: the apiserver (by every name a client may use) and each kubelet."""
    api_names = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", "localhost")
    apiserver = Identity("apiserver", "kube-apiserver", server=True, client=False, dns_names=api_names,
                         ips=(api_service_ip, "127.0.0.1", *node_ips))
    kubelets = [Identity(f"kubelet-serving-{n}", n, server=True, client=False, dns_names=(n,), ips=(ip,))
                for n, ip in zip(node_names, node_ips, strict=True)]
    return [apiserver, *kubelets]


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_ca(directory: Path, cluster_name: str) -> None:
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    subject = _name(f"dkc-{cluster_name}-ca")
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY * 10)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(key, directory / "ca.key")
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def issue(directory: Path, identity: Identity) -> None:
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    usages = [u for u, on in ((ExtendedKeyUsageOID.SERVER_AUTH, identity.server),
                              (ExtendedKeyUsageOID.CLIENT_AUTH, identity.client)) if on]
    builder = (
        x509.CertificateBuilder().subject_name(_name(identity.common_name, identity.organizations))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in identity.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in identity.ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key, directory / f"{identity.file}.key")
    (directory / f"{identity.file}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def create_service_account_keys(directory: Path) -> None:
    """The key pair the apiserver signs service-account tokens with (and verifies them by)."""
    key = _new_key()
    _write_key(key, directory / "sa.key")
    (directory / "sa.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def create_all(directory: Path, cluster_name: str, node_names: list[str], node_ips: list[str],
               api_service_ip: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    create_ca(directory, cluster_name)
    for identity in client_identities(node_names) + serving_identities(node_names, node_ips, api_service_ip):
        issue(directory, identity)
    create_service_account_keys(directory)
