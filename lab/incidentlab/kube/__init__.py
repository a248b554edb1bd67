"""The lab's Kubernetes: an API emulator per region that the unmodified kubectl and the
official ``kubernetes`` client use, with controllers, real pod processes, metrics and
nginx load balancers. Only ``lab/`` and the tests import it.

Modules: store (objects, resourceVersions, watches), api (HTTP routing), resources
(discovery, OpenAPI), objects (defaults, validation), patch, selectors, tables (kubectl's
Table output), controllers, pods (the kubelet), metrics, lb (nginx), manifests (what a
region runs), server (one region's process), region (up/down/status), faults.
"""
