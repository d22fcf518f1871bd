"""Self-tests: certificate subjects decide what RBAC and Node authorization allow."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clusters.local import pki


def test_kubelet_client_identity_is_in_the_nodes_group() -> None:
    identities = {i.file: i for i in pki.client_identities(["n1"])}
    kubelet = identities["kubelet-n1"]
    assert kubelet.common_name == "system:node:n1"
    assert kubelet.organizations == ("system:nodes",)
    assert identities["scheduler"].common_name == "system:kube-scheduler"
    assert identities["controller-manager"].common_name == "system:kube-controller-manager"
    assert identities["kube-proxy"].common_name == "system:kube-proxy"


def test_certificates_chain_to_the_ca_with_the_right_names(tmp_path: Path) -> None:
    pki.create_all(tmp_path, "t", ["n1"], ["10.213.0.2"], "10.96.0.1")
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {"10.96.0.1", "10.213.0.2"}
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage

    admin = x509.load_pem_x509_certificate((tmp_path / "admin.crt").read_bytes())
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert (tmp_path / "admin.key").stat().st_mode & 0o077 == 0, "private keys must not be readable by others"
    assert (tmp_path / "sa.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
