"""A stand-in for kube-system components (coredns, kube-proxy, metrics-server): it only
writes the kind of log lines the real one writes, so ``kubectl logs -n kube-system`` reads
as it would on a cluster. Usage: ``python -m incidentlab.kube.systemlogs COMPONENT``."""

from __future__ import annotations

import os
import random
import signal
import sys
import time

SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")


def klog(level: str, src: str, msg: str) -> str:
    t = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.gmtime(t)) + f".{int(t * 1e6) % 1000000:06d}"
    return f"{level}{stamp}       1 {src}] {msg}"


def coredns_start() -> list[str]:
    return [
        ".:53",
        "[INFO] plugin/reload: Running configuration SHA512 = 591cf328cccc12bc490481273e738df59329c62c0b729d94e8b61"
        "db9961c2fa5f046dd37f1cf888b953814040d180f52594972691cd6ff41be96639138a43908",
        "CoreDNS-1.11.3",
        "linux/amd64, go1.22.7, a6338e9",
    ]


def coredns_line() -> str:
    svc = random.choice(SERVICES)
    qid = random.randint(1000, 65535)
    ms = random.uniform(0.00005, 0.0009)
    client = f"10.244.{random.randint(0, 2)}.{random.randint(2, 60)}:{random.randint(32768, 60999)}"
    rtype = random.choice(("A", "AAAA"))
    return (
        f'[INFO] {client} - {qid} "{rtype} IN {svc}.microservices.svc.cluster.local. udp 62 false 512" '
        f"NOERROR qr,aa,rd 124 {ms:.6f}s"
    )


def kube_proxy_start() -> list[str]:
    node = os.environ.get("NODE_NAME", "node")
    return [
        klog("I", "server_linux.go:66", '"Using iptables proxy"'),
        klog("I", "server.go:677", f'"Successfully retrieved node IP(s)" IPs=["127.0.0.1"] node="{node}"'),
        klog("I", "server_linux.go:170", '"Using iptables Proxier"'),
        klog("I", "config.go:199", '"Starting service config controller"'),
        klog("I", "config.go:105", '"Starting endpoint slice config controller"'),
        klog("I", "shared_informer.go:320", '"Caches are synced for service config"'),
    ]


def kube_proxy_line() -> str:
    return klog("I", "proxier.go:807", f'"SyncProxyRules complete" elapsed="{random.uniform(4, 30):.3f}ms"')


def metrics_server_start() -> list[str]:
    return [
        klog("I", "serving.go:374", "Generated self-signed cert (/tmp/apiserver.crt, /tmp/apiserver.key)"),
        klog("I", "handler.go:275", "Adding GroupVersion metrics.k8s.io v1beta1 to ResourceManager"),
        klog("I", "secure_serving.go:213", "Serving securely on [::]:10250"),
    ]


def metrics_server_line() -> str:
    return klog(
        "I",
        "scraper.go:149",
        f'"Scrape finished" duration="{random.uniform(15, 60):.1f}ms" nodeCount=3 podCount={random.randint(18, 30)}',
    )


COMPONENTS = {
    "coredns": (coredns_start, coredns_line, 4.0),
    "kube-proxy": (kube_proxy_start, kube_proxy_line, 15.0),
    "metrics-server": (metrics_server_start, metrics_server_line, 15.0),
}


def main() -> None:
    component = sys.argv[1] if len(sys.argv) > 1 else ""
    if component not in COMPONENTS:
        raise SystemExit(f"usage: python -m incidentlab.kube.systemlogs {{{','.join(COMPONENTS)}}}")
    start, line, period = COMPONENTS[component]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for text in start():
        print(text, flush=True)
    while True:
        time.sleep(period * random.uniform(0.5, 1.5))
        print(line(), flush=True)


if __name__ == "__main__":
    main()
