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
  - kubernetes (the official Python client) on the host that runs the module.
"""

    # Several clusters in one task (k8s.clusters_argument_spec): incident.response.kube_auth.clusters
    CLUSTERS = r"""
options:
  clusters:
    description:
      - Clusters to act on in one task, concurrently (for example one per region). Each entry takes the
        connection options of a single cluster; what an entry leaves unset comes from the module-level options
        (one O(kubeconfig), a O(clusters[].context) per region).
      - Without it, the module acts on the one cluster the module-level options describe, named after its
        O(context) (or O(host), or V(default)).
      - Results name each cluster by O(clusters[].name).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the cluster in results and messages, for example the region.
        type: str
        required: true
      kubeconfig:
        description: Path to a kubeconfig file.
        type: path
      context:
        description: Context of the kubeconfig.
        type: str
      host:
        description: API server URL, to connect without a kubeconfig.
        type: str
      api_key:
        description: Bearer token for O(clusters[].host). Never logged or returned.
        type: str
      ca_cert:
        description: CA certificate that signed the API server's certificate.
        type: path
        aliases: [ssl_ca_cert]
      validate_certs:
        description: Verify the API server's TLS certificate.
        type: bool
        default: true
        aliases: [verify_ssl]
      in_cluster:
        description: Use the service account of the pod the module runs in.
        type: bool
        default: false
"""
