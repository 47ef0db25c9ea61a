#!/usr/bin/env python3
"""deploy/check.sh's check of one rendered overlay's tracker tier (issue #16).

    kubectl kustomize deploy/overlays/ENV | check_shards.py ENV SHARD_COUNT PRIVTRAK_YAML

SHARD_COUNT is tracker.shard_count as `privtrak check-config` read it.
Without the proxy (Deployment privtrak-haproxy): one instance, one shard,
Services privtrak-http and privtrak-udp in front of it. With it, every count
agrees and every piece is wired:
  - StatefulSet privtrak: replicas = tracker.shard_count = the proxy's
    TRACKER_SHARD_COUNT; PRIVTRAK_TRACKER_SHARD_INDEX from the pod label
    apps.kubernetes.io/pod-index, the count from the ConfigMap only;
  - the proxy: TRACKER_SHARD_0..N-1 and no more, shard i at
    privtrak-i.privtrak-headless.<namespace>.svc.cluster.local:6969; its
    ConfigMap's haproxy.cfg is deploy/haproxy/haproxy.cfg byte for byte, and
    `haproxy -c` accepts it with the Deployment's environment (where haproxy
    is installed);
  - Service privtrak-http selects the proxy; one UDP Service per shard
    (privtrak-udp-i on pod privtrak-i), none across shards;
  - the trackers believe X-Forwarded-For from somewhere (http.trusted_proxies)
    and a NetworkPolicy lets only the proxy reach their HTTP port.
Prints one line per check; exit 1 if any failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SHIPPED = HERE / "haproxy" / "haproxy.cfg"


def main() -> int:
    name, count, config_path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    failures = []

    def check(ok: bool, good: str, bad: str) -> None:
        if ok:
            print(f"{name}: {good}")
        else:
            failures.append(bad)
            print(f"FAIL {name}: {bad}", file=sys.stderr)

    sts = objects.get(("StatefulSet", "privtrak"))
    if sts is None:
        check(False, "", "no StatefulSet privtrak")
        return 1
    replicas = sts["spec"].get("replicas", 1)
    namespace = sts["metadata"].get("namespace", "default")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    services = [d for d in docs if d["kind"] == "Service"]
    udp_services = [s for s in services if s["spec"].get("clusterIP") != "None"
                    and any(p.get("protocol") == "UDP" for p in s["spec"].get("ports", []))]
    proxy = objects.get(("Deployment", "privtrak-haproxy"))
    settings = yaml.safe_load(config_path.read_text()) or {}

    if proxy is None:
        # One instance: a swarm split over instances never connects, and a
        # dual-stack client's bytes would count on each (deploy/README.md).
        check(replicas == 1 and count == 1, "one tracker instance (no shards, no proxy)",
              f"StatefulSet replicas {replicas}, tracker.shard_count {count}: without the proxy "
              "(deploy/haproxy) an overlay runs exactly one instance and one shard")
        check([s["metadata"]["name"] for s in udp_services] == ["privtrak-udp"],
              "UDP Service privtrak-udp",
              f"expected the one UDP Service privtrak-udp, got {[s['metadata']['name'] for s in udp_services]}")
        return 1 if failures else 0

    # ---- shards ------------------------------------------------------------
    check(replicas == count, f"{replicas} tracker instances = tracker.shard_count {count}",
          f"StatefulSet replicas {replicas} != tracker.shard_count {count} in {config_path.name}")
    index = env.get("PRIVTRAK_TRACKER_SHARD_INDEX", {})
    check(index.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
          == "metadata.labels['apps.kubernetes.io/pod-index']",
          "each pod's tracker.shard_index is its ordinal (pod label apps.kubernetes.io/pod-index)",
          "StatefulSet privtrak: env PRIVTRAK_TRACKER_SHARD_INDEX must come from the fieldRef "
          "metadata.labels['apps.kubernetes.io/pod-index']")
    check("PRIVTRAK_TRACKER_SHARD_COUNT" not in env, "the shard count comes from the ConfigMap only",
          "StatefulSet privtrak sets PRIVTRAK_TRACKER_SHARD_COUNT: keep the count in privtrak.yaml only")
    check(sts["spec"].get("serviceName") == "privtrak-headless", "pods named under privtrak-headless",
          f"StatefulSet serviceName {sts['spec'].get('serviceName')!r}, expected privtrak-headless")

    pod = proxy["spec"]["template"]["spec"]
    haproxy = pod["containers"][0]
    proxy_env = {e["name"]: e.get("value") for e in haproxy.get("env", [])}
    check(proxy_env.get("TRACKER_SHARD_COUNT") == str(count), f"proxy TRACKER_SHARD_COUNT {count}",
          f"proxy TRACKER_SHARD_COUNT {proxy_env.get('TRACKER_SHARD_COUNT')!r} != tracker.shard_count {count}")
    expected = {f"TRACKER_SHARD_{i}": f"privtrak-{i}.privtrak-headless.{namespace}.svc.cluster.local:6969"
                for i in range(count)}
    got = {k: v for k, v in proxy_env.items()
           if k.startswith("TRACKER_SHARD_") and k != "TRACKER_SHARD_COUNT" and not k.endswith("_ADMIN_PORT")}
    check(got == expected, f"proxy routes shard i to privtrak-i.privtrak-headless.{namespace} (i < {count})",
          f"proxy shard addresses {got}, expected {expected}")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mount = next((m for m in haproxy.get("volumeMounts", []) if m["mountPath"] == "/usr/local/etc/haproxy"), None)
    cm_name = volumes.get(mount["name"], {}).get("configMap", {}).get("name") if mount else None
    cm = objects.get(("ConfigMap", cm_name)) if cm_name else None
    rendered = (cm or {}).get("data", {}).get("haproxy.cfg")
    check(rendered == SHIPPED.read_text(), f"proxy configuration = deploy/haproxy/haproxy.cfg (ConfigMap {cm_name})",
          f"the proxy's mounted ConfigMap {cm_name!r} does not hold deploy/haproxy/haproxy.cfg unchanged")
    exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if exe and rendered is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".cfg") as f:
            f.write(rendered)
            f.flush()
            run_env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_SHARD_", "PROXY_"))}
            run_env.update({k: v for k, v in proxy_env.items() if v is not None})
            out = subprocess.run([exe, "-c", "-f", f.name], env=run_env, capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=60)
        check(out.returncode == 0, "haproxy -c accepts the configuration with the Deployment's environment",
              f"haproxy -c: {out.stdout}{out.stderr}")
    else:
        print(f"{name}: haproxy not installed, haproxy -c skipped")
    args = haproxy.get("command", []) + haproxy.get("args", [])
    check("/usr/local/etc/haproxy/haproxy.cfg" in args, "haproxy runs the mounted file",
          f"proxy command {args} does not load /usr/local/etc/haproxy/haproxy.cfg")

    http = objects.get(("Service", "privtrak-http"), {})
    check(http.get("spec", {}).get("selector", {}).get("app.kubernetes.io/component") == "proxy",
          "Service privtrak-http selects the proxy", "Service privtrak-http must select the proxy's pods")
    by_name = {s["metadata"]["name"]: s for s in udp_services}
    wanted = [f"privtrak-udp-{i}" for i in range(count)]
    ok = sorted(by_name) == sorted(wanted) and all(
        by_name[f"privtrak-udp-{i}"]["spec"]["selector"].get("statefulset.kubernetes.io/pod-name") == f"privtrak-{i}"
        for i in range(count))
    check(ok, f"one UDP Service per shard ({', '.join(wanted)}), none across shards",
          f"UDP Services {sorted(by_name)}: expected exactly {wanted}, privtrak-udp-i selecting pod privtrak-i")

    trusted = (settings.get("http") or {}).get("trusted_proxies") or []
    check(bool(trusted), f"trackers believe X-Forwarded-For from {trusted}",
          "http.trusted_proxies is empty: the trackers would hand out the proxy's address to peers")
    policy = objects.get(("NetworkPolicy", "privtrak-tracker"), {})
    rules = policy.get("spec", {}).get("ingress", [])
    tcp_http = [r for r in rules if {"protocol": "TCP", "port": 6969} in r.get("ports", [])]
    check(len(tcp_http) == 1 and tcp_http[0].get("from") == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "privtrak", "app.kubernetes.io/component": "proxy"}}}],
          "NetworkPolicy privtrak-tracker: only the proxy reaches the trackers' HTTP port",
          "NetworkPolicy privtrak-tracker must allow TCP 6969 from the proxy's pods only")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
