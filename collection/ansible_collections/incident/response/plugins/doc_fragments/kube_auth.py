# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How a module reaches one Kubernetes cluster (official kubernetes Python client).
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file. Defaults to E(K8S_AUTH_KUBECONFIG), E(KUBECONFIG), then C(~/.kube/config).
    type: path
  context:
    description:
      - Context of the kubeconfig to use (one per region on a multi-region platform).
        Defaults to E(K8S_AUTH_CONTEXT), then the kubeconfig's current context.
    type: str
  host:
    description:
      - API server URL, to connect without a kubeconfig. Defaults to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token for O(host). Never logged or returned. Defaults to E(K8S_AUTH_API_KEY).
    type: str
  ca_cert:
    description:
      - CA certificate that signed the API server's certificate. Defaults to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  validate_certs:
    description:
      - Verify the API server's TLS certificate.
    type: bool
    default: true
    aliases: [verify_ssl]
  in_cluster:
    description:
      - Use the service account of the pod the module runs in.
    type: bool
    default: false
  request_timeout:
    description:
      - Seconds to wait for each API request. An unreachable API server fails after this, without retries.
    type: float
    default: 10.0
requirements:
  - kubernetes >= 37.0 (the official Python client) on the host that runs the module; an older client fails the
    task saying so.
"""
