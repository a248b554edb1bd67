# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Several Kubernetes clusters (the platform's regions) in one task.
    DOCUMENTATION = r"""
options:
  clusters:
    description:
      - Several clusters (one per region) in one task, read concurrently. Each entry names a cluster and
        says how to reach it, with the same options as a single cluster.
      - When given, the top-level O(context), O(host), O(api_key), O(ca_cert) and O(in_cluster) are not used;
        O(kubeconfig) is the default kubeconfig of the entries that give neither O(clusters[].kubeconfig)
        nor O(clusters[].host). O(request_timeout) applies to every cluster.
      - Without it, the task acts on the one cluster the top-level options describe, named after its
        O(context) (or V(default)).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the cluster in the results and in file names (the region, for example V(primary)).
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
