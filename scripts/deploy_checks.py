#!/usr/bin/python3
"""What the deployment files promise, checked on the files themselves.

Schema validators (docker-compose config, kubernetes-validate, promtool) prove the files are
well-formed; these checks prove they say what deploy/README.md says they say: health checks on
/ready, start order by health, the sandbox reachable only from the code-executor, limits and
hardening everywhere, one set of alert rules for compose and Kubernetes, and a dashboard whose
queries name metrics that exist.

    deploy_checks.py compose CONFIG_YAML          (output of `docker-compose config`)
    deploy_checks.py compose-scaled CONFIG_YAML   (`docker-compose -f docker-compose.yml -f scale.yml config`)
    deploy_checks.py kubernetes DIR
    deploy_checks.py auth-compose COMPOSE_FILE SECRETS_DIR   (after deploy/make-secrets.sh --dir SECRETS_DIR)
    deploy_checks.py auth-kubernetes DIR                      (the same; DIR's kustomization includes ../secrets)
    deploy_checks.py compose-env COMPOSE_FILE SERVICE SECRETS_DIR   (VAR=value lines of its auth wiring)
    deploy_checks.py cert-manager BUILD_YAML BASE_GATEWAY_TOML   (kustomize build with the cert-manager component)
    deploy_checks.py core-resources BUILD_YAML > CORE_YAML        (the build without cert-manager's resources)
    deploy_checks.py rules ALERTS_YML PROMETHEUS_RULE_YAML
    deploy_checks.py prometheus-rule ALERTS_YML > PROMETHEUS_RULE_YAML   (generate it)
    deploy_checks.py dashboard DASHBOARD_JSON DATASOURCES_YML
    deploy_checks.py metric-names SOURCE_DIR METRICS_FILE... -- FILE...   (names used exist)

The auth-* checks prove authentication is on everywhere and wired end to end: no service sets
SWITCHBOARD_ALLOW_UNAUTHENTICATED, every secret a service or manifest names is one
deploy/make-secrets.sh produces (the files exist after it ran), every path a setting names is
mounted, and every token a service sends is admitted by the API keys file of the service it
calls (the middleware's also listed in the gateway's delegates). The sandbox's admin token is
read from a mounted file (SANDBOX_ADMIN_TOKEN=file:...), never given as a value in the
environment (no value, env_file, secretKeyRef or envFrom carries it).

The cert-manager check reads the kustomize build of deploy/kubernetes with its cert-manager
component: the cert-manager resources' required fields (kubernetes-validate has no schema for
them), and that every service serves HTTPS with a certificate naming its Service, every caller
uses https:// and trusts the CA that signed the callee, probes use HTTPS, and client
certificates come only from a namespaced CA that signs certificates of admitted callers.

The scale-out checks (deploy/README.md, "Scaling out") read the same files: in Kubernetes the
sandbox is a StatefulSet with a volume per replica behind a headless Service, which the
code-executor resolves into every sandbox pod; the code-executor keeps its tasks on a volume at
its state directory, as one replica without an HPA (its tasks are not shared); in Compose,
scale.yml gives each sandbox container its own volume, makes the code-executor resolve
`sandbox`, and Prometheus scrape each replica. In both, and in Compose with and without
scale.yml, the sandbox admits as Host the name (with and without the port) of the
code-executor's sandbox URL: a resolved sandbox is asked under that name, not its address, so
its allowed hosts need only the Service's names (no pod IP).

Exit status 1 with one line per problem; uses only the standard library and PyYAML.
"""

import glob
import hashlib
import json
import os
import re
import sys
import tomllib
import urllib.parse

import yaml

SERVICES = {
    "mcp-server": 8000,
    "sandbox": 8001,
    "middleware": 8002,
    "time-client": 8003,
    "code-executor": 8004,
}

problems = []


def problem(message):
    problems.append(message)


# The kinds a service may run as: the sandbox and the code-executor are StatefulSets (a volume
# per replica), the others Deployments.
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def workloads(docs):
    """name -> the Deployment or StatefulSet of that name."""
    found = {}
    for doc in docs:
        if doc.get("kind") in WORKLOAD_KINDS:
            name = doc["metadata"]["name"]
            if name in found:
                problem(f"{name}: both a {found[name]['kind']} and a {doc['kind']}")
            found[name] = doc
    return found


def finish(what):
    if problems:
        for p in problems:
            print(f"{what}: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"{what}: ok")


# --- compose -------------------------------------------------------------------------------


def check_compose(path, scaled=False):
    with open(path) as f:
        config = yaml.safe_load(f)
    services = config["services"]
    networks = config.get("networks", {})
    for name, port in SERVICES.items():
        svc = services.get(name)
        if svc is None:
            problem(f"service {name} missing")
            continue
        test = svc.get("healthcheck", {}).get("test", [])
        if f"http://127.0.0.1:{port}/ready" not in test:
            problem(f"{name}: healthcheck does not probe /ready on port {port}: {test}")
        if not svc.get("read_only"):
            problem(f"{name}: root filesystem is not read-only")
        if "ALL" not in svc.get("cap_drop", []):
            problem(f"{name}: does not drop all capabilities")
        if svc.get("privileged"):
            problem(f"{name}: privileged")
        if svc.get("cap_add"):
            problem(f"{name}: adds capabilities {svc['cap_add']}")
        user = str(svc.get("user", "0"))
        if user.split(":")[0] in ("0", "root"):
            problem(f"{name}: runs as root")
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        if not limits.get("memory") or not limits.get("cpus"):
            problem(f"{name}: no memory/cpu limit")
        if not svc.get("pids_limit"):
            problem(f"{name}: no pids limit")
        listen = next((v for k, v in svc.get("environment", {}).items() if k.endswith("_LISTEN")), None)
        if listen != f"0.0.0.0:{port}":
            problem(f"{name}: listens on {listen}, expected 0.0.0.0:{port}")
        hosts = svc.get("environment", {}).get("SWITCHBOARD_ALLOWED_HOSTS", "")
        if name not in hosts.split(","):
            problem(f"{name}: SWITCHBOARD_ALLOWED_HOSTS lacks its own name: {hosts!r}")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if cond.get("condition") != "service_healthy":
                problem(f"{name}: depends on {dep} without condition service_healthy")
        for published in svc.get("ports", []):
            text = published if isinstance(published, str) else str(published.get("host_ip", ""))
            if not str(text).startswith("127.0.0.1:"):
                problem(f"{name}: port published beyond loopback: {published}")
    expected_deps = {
        "mcp-server": {"time-client", "code-executor"},
        "code-executor": {"sandbox"},
        "middleware": {"mcp-server"},
    }
    for name, deps in expected_deps.items():
        got = set((services.get(name, {}).get("depends_on") or {}).keys())
        if got != deps:
            problem(f"{name}: depends_on {sorted(got)}, expected {sorted(deps)}")
    # The sandbox: on one internal network shared only with the code-executor and Prometheus,
    # nothing published, and the security options its isolation needs (no privileged mode).
    sandbox = services.get("sandbox", {})
    sandbox_nets = set(sandbox.get("networks", {}).keys())
    if len(sandbox_nets) != 1:
        problem(f"sandbox: on networks {sorted(sandbox_nets)}, expected exactly one")
    for net in sandbox_nets:
        if not networks.get(net, {}).get("internal"):
            problem(f"sandbox: network {net} is not internal")
        members = {n for n, s in services.items() if net in (s.get("networks") or {})}
        if members - {"sandbox", "code-executor", "prometheus"}:
            problem(f"sandbox network {net} also has {sorted(members - {'sandbox', 'code-executor', 'prometheus'})}")
        if "code-executor" not in members:
            problem(f"sandbox network {net} lacks the code-executor")
    if sandbox.get("ports"):
        problem("sandbox: publishes ports")
    opts = [str(o) for o in sandbox.get("security_opt", [])]
    for needed in ("seccomp:../seccomp/sandbox.json", "apparmor:unconfined", "systempaths=unconfined"):
        if needed not in opts:
            problem(f"sandbox: security_opt lacks {needed}")
    if "seccomp:unconfined" in opts or "seccomp=unconfined" in opts:
        problem("sandbox: seccomp unconfined")
    # The admin token is a file: `docker-compose config` merges env_file into environment, so
    # a value from either would show here.
    admin = str((sandbox.get("environment") or {}).get(ADMIN_TOKEN) or "")
    if not admin.startswith(f"file:{SECRETS_MOUNT}/"):
        problem(f"sandbox: {ADMIN_TOKEN} is {'a value' if admin else 'unset'}, expected file:{SECRETS_MOUNT}/...")
    sandbox_hosts = compose_env(sandbox).get("SWITCHBOARD_ALLOWED_HOSTS")
    check_sandbox_admits_executor(
        url_list(compose_env(services.get("code-executor", {})).get("CODE_EXECUTOR_SANDBOX_URL")),
        DEFAULT_ALLOWED_HOSTS if sandbox_hosts is None else str(sandbox_hosts).split(","),
    )
    for tool in ("prometheus", "grafana"):
        if tool not in services or "healthcheck" not in services[tool]:
            problem(f"{tool}: missing or without healthcheck")
    check_compose_state(config)
    if scaled:
        check_compose_scaled(config)
    finish("compose policy (with scale.yml)" if scaled else "compose policy")


# The one directory of the distroless `switchboard` image that its uid (65532) owns. A new
# volume mounted over a directory of the image takes that directory's owner and mode; mounted
# over a path the image lacks it is root's, and the service could not create its state there.
OWNED_BY_SERVICE_UID = "/home/nonroot"
# Services scale.yml lets run as several containers, and the host-port variable of each.
SCALED = {"sandbox": None, "mcp-server": "SWITCHBOARD_GATEWAY_PORTS", "middleware": "SWITCHBOARD_MIDDLEWARE_PORTS"}


def compose_volumes(svc, config):
    """target -> (kind, source) of a service's volumes, kind being named, anonymous or bind;
    short (`docker-compose config` 1.29) or long (Compose v2) syntax."""
    declared = set((config.get("volumes") or {}).keys())
    found = {}
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume.get("target")
            kind = "bind" if volume.get("type") == "bind" else ("named" if source else "anonymous")
        else:
            parts = str(volume).split(":")
            if len(parts) == 1 or parts[1] in ("ro", "rw"):
                source, target, kind = None, parts[0], "anonymous"
            else:
                source, target = parts[0], parts[1]
                kind = "named" if source in declared else "bind"
        found[target] = (kind, source)
    return found


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return env


def check_compose_state(config):
    """The code-executor's tasks and the sandbox's packages and state are on volumes: the
    code-executor's state directory strictly below a named volume mounted over a directory its
    uid owns in the image; the sandbox's directories below its volume."""
    services = config["services"]
    executor = services.get("code-executor", {})
    state_dir = compose_env(executor).get("CODE_EXECUTOR_STATE_DIR")
    volumes = compose_volumes(executor, config)
    if not state_dir:
        problem("code-executor: no CODE_EXECUTOR_STATE_DIR: tasks would be kept nowhere that survives a restart")
    else:
        holding = [t for t, (kind, _) in volumes.items() if kind == "named" and below(state_dir, t)]
        if not holding:
            problem(f"code-executor: CODE_EXECUTOR_STATE_DIR={state_dir!r} is not strictly below a named volume's mount ({sorted(volumes) or 'none'}): its tasks would not survive a restart")
        elif holding[0] != OWNED_BY_SERVICE_UID:
            problem(f"code-executor: its state volume is mounted at {holding[0]}, not {OWNED_BY_SERVICE_UID}: a new volume there belongs to root, and the service (uid 65532) cannot create {state_dir}")
    sandbox = services.get("sandbox", {})
    volumes = compose_volumes(sandbox, config)
    env = compose_env(sandbox)
    for var in ("SANDBOX_PACKAGES_DIR", "SANDBOX_STATE_DIR"):
        if not any(kind != "bind" and below(env.get(var), t) for t, (kind, _) in volumes.items()):
            problem(f"sandbox: {var}={env.get(var)!r} is not below a volume's mount")


def check_compose_scaled(config):
    """docker-compose.yml with scale.yml: each sandbox container its own (anonymous) volume;
    the code-executor resolves `sandbox` into every sandbox container (asking each under that
    name, which check_compose finds admitted); the scalable services publish host-port ranges;
    Prometheus finds each replica."""
    services = config["services"]
    sandbox = services.get("sandbox", {})
    volumes = compose_volumes(sandbox, config)
    packages = compose_env(sandbox).get("SANDBOX_PACKAGES_DIR")
    for target, (kind, source) in volumes.items():
        if below(packages, target) and kind != "anonymous":
            problem(f"sandbox: {target} is the {kind} volume {source}, which every replica would share; scale.yml must make it anonymous (one per container)")
    env = compose_env(services.get("code-executor", {}))
    if str(env.get("CODE_EXECUTOR_SANDBOX_RESOLVE")).lower() != "true":
        problem("code-executor: CODE_EXECUTOR_SANDBOX_RESOLVE is not true: it would see the sandboxes as one")
    for url in str(env.get("CODE_EXECUTOR_SANDBOX_URL") or "").split(","):
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme != "http" or parts.hostname != "sandbox" or parts.port != SERVICES["sandbox"]:
            problem(f"code-executor: CODE_EXECUTOR_SANDBOX_URL {url!r} is not http://sandbox:{SERVICES['sandbox']} (the name Docker resolves to every sandbox container)")
    for name, variable in SCALED.items():
        for published in services.get(name, {}).get("ports") or []:
            text = published if isinstance(published, str) else f"{published.get('host_ip', '')}:{published.get('published', '')}"
            host_port = str(text).rsplit("/", 1)[0].split(":")[1] if str(text).count(":") >= 2 else ""
            low, _, high = host_port.partition("-")
            if not high or not low.isdigit() or not high.isdigit() or int(high) <= int(low):
                problem(f"{name}: publishes {published} with scale.yml: one host port serves one container; set {variable} to a range")
    prometheus = services.get("prometheus", {})
    config_file = compose_volumes(prometheus, config).get("/etc/prometheus/prometheus.yml", (None, None))[1]
    if not config_file or not os.path.isfile(config_file):
        problem(f"prometheus: its configuration {config_file!r} is not a file")
        return
    with open(config_file) as f:
        jobs = {j["job_name"]: j for j in yaml.safe_load(f).get("scrape_configs", [])}
    for name in SCALED:
        job = jobs.get(name, {})
        sd = job.get("dns_sd_configs") or []
        if job.get("static_configs") or not any(name in (c.get("names") or []) and c.get("type") == "A" and c.get("port") == SERVICES[name] for c in sd):
            problem(f"prometheus ({os.path.basename(config_file)}): job {name} does not find each replica by DNS (dns_sd_configs, names [{name}], type A, port {SERVICES[name]}); a static target reaches a different replica at each scrape")


# --- the Host the code-executor sends its sandboxes --------------------------------------------

# What a service admits as Host when SWITCHBOARD_ALLOWED_HOSTS is unset
# (crates/switchboard-runtime/src/http.rs, default_allowed_hosts).
DEFAULT_ALLOWED_HOSTS = ["localhost", "127.0.0.1", "::1"]


def url_list(value):
    """The URLs of a comma-separated setting (CODE_EXECUTOR_SANDBOX_URL)."""
    return [u.strip() for u in str(value or "").split(",") if u.strip()]


def split_host_port(value):
    """(name, port or None) of a Host value or an allowed-hosts entry, split as the runtime
    splits them (crates/switchboard-runtime/src/http.rs): `[v6]:port`, a bare IPv6 address
    (no port), `name:port`, `name`."""
    if value.startswith("["):
        name, closed, tail = value[1:].partition("]")
        if not closed:
            return value, None
        return name, tail[1:] if tail.startswith(":") else None
    if value.count(":") > 1:
        return value, None
    name, colon, port = value.partition(":")
    return name, port if colon else None


def host_admitted(allowed, host):
    """Whether a service whose SWITCHBOARD_ALLOWED_HOSTS is `allowed` admits the Host value
    `host`, matched as the runtime's host_allowed does: case-insensitive, an entry without a
    port admits the name on any port, an empty list or `*` admits every host."""
    allowed = [a.strip().lower() for a in allowed if a.strip()]
    if not allowed or "*" in allowed:
        return True
    name, port = split_host_port(host.strip().lower())
    for entry in allowed:
        a_name, a_port = split_host_port(entry)
        if a_name == name and (a_port is None or a_port == port):
            return True
    return False


def check_sandbox_admits_executor(urls, allowed):
    """The sandbox admits the Host the code-executor sends it for each of its sandbox URLs,
    with and without the port as the URL writes it. Unresolved, that is the URL's own host;
    resolved (CODE_EXECUTOR_SANDBOX_RESOLVE), each address is asked under the name it was
    resolved from, with the port as the URL wrote it (crates/switchboard-code-executor/src/
    sandboxes.rs, `resolve`). So the Service's names suffice: the entries that expand per pod
    ($(POD_IP), $(POD_NAME)) are not counted, and listing the pod's address is refused, since
    nothing sends it."""
    literal = [h for h in allowed if "$(" not in h]
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        written = parts.netloc.rpartition("@")[2]
        try:
            port = parts.port
        except ValueError:
            port = None
        if not written:
            continue  # no host: the URL checks name it
        name = written.rsplit(":", 1)[0] if port is not None else written
        for host in dict.fromkeys([name, written]):
            if not host_admitted(literal, host):
                problem(f"sandbox: SWITCHBOARD_ALLOWED_HOSTS {','.join(allowed)!r} does not admit Host {host!r}, the name of the code-executor's sandbox URL {url!r}, under which it asks every sandbox: each would answer 403")
    if any("$(POD_IP)" in h for h in allowed):
        problem("sandbox: SWITCHBOARD_ALLOWED_HOSTS lists $(POD_IP): the code-executor asks each resolved sandbox under the Service's name, never by its address; drop it")


# --- kubernetes ----------------------------------------------------------------------------


def load_dir(directory):
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((os.path.basename(path), doc))
    return docs


def check_kubernetes(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    resources = kustomization.get("resources", [])
    listed = {r for r in resources if not os.path.isdir(os.path.join(directory, r)) and r.endswith(".yaml")}
    if "../secrets" not in resources:
        problem("kustomization does not include ../secrets (the Secrets make-secrets.sh's files make)")
    present = {
        os.path.basename(p)
        for p in glob.glob(os.path.join(directory, "*.yaml"))
        if os.path.basename(p) != "kustomization.yaml"
    }
    if listed != present:
        problem(f"kustomization resources {sorted(listed)} != files {sorted(present)}")
    docs = load_dir(directory)
    by_kind = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = workloads(doc for _, doc in docs)
    for name, port in SERVICES.items():
        dep = deployments.get(name)
        if dep is None:
            problem(f"workload (Deployment or StatefulSet) {name} missing")
            continue
        pod = dep["spec"]["template"]["spec"]
        ann = dep["spec"]["template"]["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port):
            problem(f"{name}: scrape annotations missing or wrong port")
        if pod.get("automountServiceAccountToken") is not False:
            problem(f"{name}: mounts a service account token")
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
            problem(f"{name}: pod not runAsNonRoot with a uid")
        if not psc.get("seccompProfile"):
            problem(f"{name}: no seccomp profile")
        (container,) = pod["containers"]
        probes = {k: container.get(k, {}).get("httpGet", {}).get("path") for k in ("livenessProbe", "readinessProbe")}
        if probes != {"livenessProbe": "/health", "readinessProbe": "/ready"}:
            problem(f"{name}: probes {probes}, expected liveness /health, readiness /ready")
        res = container.get("resources", {})
        for kind in ("requests", "limits"):
            if not res.get(kind, {}).get("cpu") or not res.get(kind, {}).get("memory"):
                problem(f"{name}: resources.{kind} lacks cpu or memory")
        csc = container.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False:
            problem(f"{name}: allowPrivilegeEscalation is not false")
        if csc.get("readOnlyRootFilesystem") is not True:
            problem(f"{name}: root filesystem not read-only")
        if csc.get("privileged"):
            problem(f"{name}: privileged")
        if csc.get("capabilities", {}).get("drop") != ["ALL"] or csc.get("capabilities", {}).get("add"):
            problem(f"{name}: capabilities not exactly drop ALL")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        listen_var = name.upper().replace("-", "_") + "_LISTEN"
        if env.get(listen_var) != f"0.0.0.0:{port}":
            problem(f"{name}: {listen_var}={env.get(listen_var)}, expected 0.0.0.0:{port}")
        if name not in (env.get("SWITCHBOARD_ALLOWED_HOSTS") or "").split(","):
            problem(f"{name}: SWITCHBOARD_ALLOWED_HOSTS lacks its own name")
        if name not in by_kind.get("Service", {}):
            problem(f"Service {name} missing")
    sandbox = deployments.get("sandbox", {}).get("spec", {}).get("template", {}).get("spec", {})
    if sandbox:
        if sandbox.get("hostUsers") is not False:
            problem("sandbox: hostUsers is not false")
        csc = sandbox["containers"][0].get("securityContext", {})
        if csc.get("procMount") != "Unmasked":
            problem("sandbox: procMount is not Unmasked")
        profile = sandbox.get("securityContext", {}).get("seccompProfile", {})
        if profile != {"type": "Localhost", "localhostProfile": "profiles/switchboard-sandbox.json"}:
            problem(f"sandbox: seccomp profile {profile}")
    # Network policies: default deny in both namespaces; the sandbox admits the code-executor
    # (and Prometheus) only; the gateway admits the middleware (and Prometheus) only.
    policies = [doc for _, doc in docs if doc["kind"] == "NetworkPolicy"]
    for ns in ("switchboard", "switchboard-sandbox"):
        if not any(p["metadata"]["namespace"] == ns and p["spec"]["podSelector"] == {} and p["spec"].get("policyTypes") == ["Ingress"] and not p["spec"].get("ingress") for p in policies):
            problem(f"no default-deny ingress policy in {ns}")

    def sources(app):
        found = []
        for p in policies:
            if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") != app:
                continue
            for rule in p["spec"].get("ingress", []):
                for peer in rule.get("from", [{}]):
                    found.append(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name", "ANY"))
        return sorted(found)

    if sources("sandbox") != ["code-executor", "prometheus"]:
        problem(f"sandbox admits {sources('sandbox')}, expected code-executor and prometheus")
    if sources("mcp-server") != ["middleware", "prometheus"]:
        problem(f"mcp-server admits {sources('mcp-server')}, expected middleware and prometheus")
    hpas = {}
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        ref = hpa["spec"]["scaleTargetRef"]
        hpas[ref["name"]] = ref
        target = deployments.get(ref["name"])
        if target is None or target["kind"] != ref.get("kind"):
            problem(f"HPA {hpa['metadata']['name']} scales {ref.get('kind')} {ref['name']}, which is not in the manifests")
    # Not the code-executor (its tasks are its own, see check_scale_out_kubernetes) and not the
    # sandbox (scaled by hand: new replicas must catch up on packages, approvals are per pod).
    if set(hpas) != {"middleware", "mcp-server", "time-client"}:
        problem(f"HPAs for {sorted(hpas)}, expected the middleware, mcp-server, time-client (not the code-executor: its tasks live in one replica; not the sandbox)")
    gateway_service = by_kind.get("Service", {}).get("mcp-server", {})
    if gateway_service.get("spec", {}).get("sessionAffinity"):
        problem("the mcp-server Service has session affinity; its sealed session ids need none")
    check_scale_out_kubernetes([doc for _, doc in docs], deployments, set(hpas))
    finish("kubernetes policy")


def env_list(container):
    """name -> the env entry, and the names in their order."""
    entries = container.get("env", [])
    return {e["name"]: e for e in entries}, [e["name"] for e in entries]


def below(path, mount):
    """Whether `path` is strictly inside the directory `mount`."""
    path, mount = os.path.normpath(str(path or "")), os.path.normpath(str(mount or ""))
    return os.path.isabs(path) and path != mount and path.startswith(mount.rstrip("/") + "/")


def persistent_mounts(workload):
    """mountPath -> volume name, of the workload's container's mounts that persist: a
    volumeClaimTemplate of a StatefulSet (one volume per replica) or a persistentVolumeClaim."""
    pod = workload["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    templates = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates") or []}
    found = {}
    for mount in container.get("volumeMounts", []):
        name = mount["name"]
        if name in templates or "persistentVolumeClaim" in volumes.get(name, {}):
            found[mount["mountPath"]] = name
    return found


def check_scale_out_kubernetes(docs, workloads_by_name, hpa_targets):
    """The scale-out shape (deploy/README.md, "Scaling out"):

    - the sandbox is a StatefulSet with a ReadWriteOnce volumeClaimTemplate mounted above its
      packages and state directories (no volume shared by its replicas), governed by a headless
      Service (clusterIP: None) that selects its pods on its port;
    - the code-executor resolves that Service's name (CODE_EXECUTOR_SANDBOX_RESOLVE=true,
      CODE_EXECUTOR_SANDBOX_URL=http://<service>.<namespace>.svc:<port>), and each sandbox pod
      admits that name as Host, with and without the port (the code-executor asks each
      resolved pod under it), with no $(POD_IP);
    - the code-executor keeps its tasks on a persistent volume: CODE_EXECUTOR_STATE_DIR strictly
      below the volume's mount (the volume's root is the fsGroup's and group-writable, which the
      code-executor refuses for its own directory); one replica, no HPA (tasks are not shared);
    - both pods change the volume's group only on a root mismatch, so that a restart does not
      make their private directories group-writable."""
    services = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d.get("kind") == "Service"}
    sandbox = workloads_by_name.get("sandbox")
    executor = workloads_by_name.get("code-executor")
    if sandbox is None or executor is None:
        return
    ns = sandbox["metadata"].get("namespace")
    headless = None
    if sandbox["kind"] != "StatefulSet":
        problem(f"sandbox: a {sandbox['kind']}, expected a StatefulSet (a volume of its own per replica, behind a headless Service)")
    else:
        templates = sandbox["spec"].get("volumeClaimTemplates") or []
        if not templates:
            problem("sandbox: no volumeClaimTemplates: its replicas would have no volume of their own")
        for t in templates:
            if t.get("spec", {}).get("accessModes") != ["ReadWriteOnce"]:
                problem(f"sandbox: volumeClaimTemplate {t['metadata']['name']} is not ReadWriteOnce")
        headless = services.get((ns, sandbox["spec"].get("serviceName")))
        if headless is None:
            problem(f"sandbox: serviceName {sandbox['spec'].get('serviceName')!r} names no Service in {ns}")
    pod = sandbox["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    if any("persistentVolumeClaim" in v for v in pod.get("volumes", [])):
        problem("sandbox: mounts a PersistentVolumeClaim, which every replica would share")
    if any(d.get("kind") == "PersistentVolumeClaim" and d["metadata"].get("namespace") == ns for d in docs):
        problem(f"a standalone PersistentVolumeClaim in {ns}: the sandbox's volumes come from its volumeClaimTemplates")
    mounts = persistent_mounts(sandbox) if sandbox["kind"] == "StatefulSet" else {}
    env, _ = env_list(container)
    for var in ("SANDBOX_PACKAGES_DIR", "SANDBOX_STATE_DIR"):
        value = (env.get(var) or {}).get("value")
        if not any(below(value, m) for m in mounts):
            problem(f"sandbox: {var}={value!r} is not below a mount of its own volume ({sorted(mounts)})")
    if pod.get("securityContext", {}).get("fsGroupChangePolicy") != "OnRootMismatch":
        problem("sandbox: fsGroupChangePolicy is not OnRootMismatch: at each mount the kubelet would make its state directory group-writable, which it refuses")
    sandbox_hosts = (env.get("SWITCHBOARD_ALLOWED_HOSTS") or {}).get("value")
    sandbox_hosts = DEFAULT_ALLOWED_HOSTS if sandbox_hosts is None else str(sandbox_hosts).split(",")
    port = None
    if headless is not None:
        spec = headless["spec"]
        if spec.get("clusterIP") != "None":
            problem(f"sandbox: its Service {headless['metadata']['name']} is not headless (clusterIP: None); its name would resolve to one virtual address, not to every sandbox")
        labels = sandbox["spec"]["template"]["metadata"].get("labels", {})
        selector = spec.get("selector") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problem(f"sandbox: its Service {headless['metadata']['name']} does not select its pods")
        ports = [p for p in spec.get("ports", []) if p.get("port") == SERVICES["sandbox"]]
        if not ports:
            problem(f"sandbox: its Service has no port {SERVICES['sandbox']}")
        else:
            port = ports[0]["port"]
    # The code-executor: resolves the headless Service into every sandbox.
    pod = executor["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env, _ = env_list(container)
    if str((env.get("CODE_EXECUTOR_SANDBOX_RESOLVE") or {}).get("value")).lower() != "true":
        problem("code-executor: CODE_EXECUTOR_SANDBOX_RESOLVE is not true: it would see the sandboxes as one")
    urls = url_list((env.get("CODE_EXECUTOR_SANDBOX_URL") or {}).get("value"))
    check_sandbox_admits_executor(urls, sandbox_hosts)
    if headless is not None:
        name = headless["metadata"]["name"]
        names = {f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"}
        for url in urls or [""]:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "http" or parts.hostname not in names or parts.port != port:
                problem(f"code-executor: CODE_EXECUTOR_SANDBOX_URL {url!r} is not http://{name}.{ns}.svc:{port} (the sandbox's headless Service; only http URLs are resolved)")
    # The code-executor's tasks: on its own volume, one replica, no HPA.
    state_dir = (env.get("CODE_EXECUTOR_STATE_DIR") or {}).get("value")
    mounts = persistent_mounts(executor)
    if not state_dir:
        problem("code-executor: no CODE_EXECUTOR_STATE_DIR: its default is not writable here and tasks would be refused")
    elif any(os.path.normpath(state_dir) == os.path.normpath(m) for m in mounts):
        problem(f"code-executor: CODE_EXECUTOR_STATE_DIR={state_dir!r} is the volume's root, which is root's and writable by the fsGroup: the code-executor refuses a directory not its own; use one below it")
    elif not any(below(state_dir, m) for m in mounts):
        problem(f"code-executor: CODE_EXECUTOR_STATE_DIR={state_dir!r} is not below the mount of a persistent volume ({sorted(mounts) or 'none'}): its tasks would not survive a restart")
    psc = pod.get("securityContext", {})
    if mounts and not psc.get("fsGroup"):
        problem("code-executor: no fsGroup: the volume's root would be root's, and it could not create its state directory")
    if mounts and psc.get("fsGroupChangePolicy") != "OnRootMismatch":
        problem("code-executor: fsGroupChangePolicy is not OnRootMismatch: at each mount the kubelet would make its task directory group-writable, which it refuses")
    replicas = executor["spec"].get("replicas", 1)
    if executor["kind"] != "StatefulSet" or replicas != 1 or "code-executor" in hpa_targets:
        problem(f"code-executor: a {executor['kind']} with {replicas} replicas{' and an HPA' if 'code-executor' in hpa_targets else ''}; expected a StatefulSet of 1 and no HPA (its tasks live in the replica that made them)")
    if "sandbox" in hpa_targets:
        problem("sandbox: has an HPA; it is scaled by hand (packages to catch up on, approvals per pod)")
    executor_service = services.get((executor["metadata"].get("namespace"), "code-executor"), {})
    if executor_service.get("spec", {}).get("sessionAffinity") != "ClientIP":
        problem("code-executor: its Service lost sessionAffinity ClientIP (its MCP sessions live in one pod)")


# --- authentication ------------------------------------------------------------------------

# Where every service finds its own credentials, in Compose and in Kubernetes.
SECRETS_MOUNT = "/run/secrets/switchboard"
# Secrets the operator makes by hand (not make-secrets.sh): a manifest may only name them as
# optional.
OPERATOR_SECRETS = {"switchboard-llm"}
# Who calls whom with which credential: (caller, its setting holding the token, callee). The
# gateway's calls to its upstreams are the headers in its configuration file.
CALLS = [
    ("middleware", "MIDDLEWARE_GATEWAY_TOKEN", "mcp-server"),
    ("code-executor", "CODE_EXECUTOR_SANDBOX_TOKEN", "sandbox"),
]
# The sandbox's admin token (package approvals): `file:` a mounted secret, never a value.
ADMIN_TOKEN = "SANDBOX_ADMIN_TOKEN"


def named_path(value):
    """The file a setting names: `file:PATH` or a plain absolute path; None otherwise."""
    value = str(value or "")
    if value.startswith("file:"):
        value = value[len("file:"):]
    return value if value.startswith("/") else None


def read_token(path):
    """A token file as Secret::resolve reads it: the text without its final newline."""
    with open(path) as f:
        text = f.read()
    return text[:-1] if text.endswith("\n") else text


def admitted_keys(path):
    """name by digest, of an API keys file."""
    with open(path, "rb") as f:
        keys = tomllib.load(f).get("key", [])
    return {k["sha256"].lower(): k["name"] for k in keys}


def digest(token):
    if token.lower().startswith("bearer "):
        token = token[len("bearer "):].strip()
    return hashlib.sha256(token.encode()).hexdigest()


def gateway_upstreams(path):
    with open(path, "rb") as f:
        return tomllib.load(f).get("mcp-server", {}).get("upstreams", [])


def check_auth_wiring(what, env_of, resolve, gateway_config):
    """The checks both deployments share. `env_of(service)` is its environment (name -> value),
    `resolve(service, path)` the local file behind a path inside its container (None when
    nothing is mounted there), `gateway_config` the local gateway configuration file."""
    for service in SERVICES:
        env = env_of(service)
        if "SWITCHBOARD_ALLOW_UNAUTHENTICATED" in env:
            problem(f"{what}: {service} sets SWITCHBOARD_ALLOW_UNAUTHENTICATED")
        if not env.get("SWITCHBOARD_API_KEYS") and not env.get("SWITCHBOARD_JWKS_URL"):
            problem(f"{what}: {service} has authentication off (no SWITCHBOARD_API_KEYS)")
        for var, value in env.items():
            path = named_path(value)
            if path and path.startswith("/run/secrets/") and resolve(service, path) is None:
                problem(f"{what}: {service}: {var} names {path}, where none of its secrets is mounted")
    gateway_env = env_of("mcp-server")
    if "MCP_SERVER_UPSTREAMS" in gateway_env:
        problem(f"{what}: mcp-server sets MCP_SERVER_UPSTREAMS, which replaces the upstreams (and their credentials) of its configuration file")
    if not gateway_env.get("MCP_SERVER_POLICY"):
        problem(f"{what}: mcp-server has no MCP_SERVER_POLICY")
    delegates = {d.strip() for d in str(gateway_env.get("MCP_SERVER_DELEGATES") or "").split(",") if d.strip()}

    def keys_of(service):
        path = resolve(service, named_path(env_of(service).get("SWITCHBOARD_API_KEYS")) or "")
        if path is None or not os.path.isfile(path):
            problem(f"{what}: {service}: its API keys file is not mounted or not made")
            return {}
        return admitted_keys(path)

    def check_call(caller, setting, value, callee):
        path = named_path(value)
        source = resolve(caller, path) if path else None
        if source is None or not os.path.isfile(source):
            problem(f"{what}: {caller}: {setting} = {value!r} is not a file:{SECRETS_MOUNT}/... made by make-secrets.sh")
            return None
        name = keys_of(callee).get(digest(read_token(source)))
        if name is None:
            problem(f"{what}: {caller}'s token for {callee} ({setting}) is not admitted by {callee}'s API keys file")
        return name

    admin = env_of("sandbox").get(ADMIN_TOKEN)
    if not str(admin or "").startswith("file:"):
        problem(f"{what}: sandbox: {ADMIN_TOKEN} is {'a value' if admin else 'not a file: setting'}; expected file:{SECRETS_MOUNT}/... (a value sits in the container's environment)")
    else:
        source = resolve("sandbox", named_path(admin) or "")
        if source is None or not os.path.isfile(source):
            problem(f"{what}: sandbox: {ADMIN_TOKEN} = {admin!r} is not a mounted file made by make-secrets.sh")
        elif len(read_token(source)) < 16:
            problem(f"{what}: sandbox: the admin token in {source} is shorter than 16 characters")
    for caller, setting, callee in CALLS:
        name = check_call(caller, setting, env_of(caller).get(setting), callee)
        if caller == "middleware" and name is not None and name not in delegates:
            problem(f"{what}: the middleware's account '{name}' is not in MCP_SERVER_DELEGATES ({sorted(delegates)})")
    if gateway_config is None or not os.path.isfile(gateway_config):
        problem(f"{what}: mcp-server: SWITCHBOARD_CONFIG is not a mounted file")
        return
    upstreams = gateway_upstreams(gateway_config)
    names = {u.get("name") for u in upstreams if isinstance(u, dict)}
    if names != {"time-client", "code-executor"}:
        problem(f"{what}: the gateway's upstream tables are {sorted(map(str, names))}, expected time-client and code-executor (with headers)")
    for upstream in upstreams:
        if not isinstance(upstream, dict):
            problem(f"{what}: gateway upstream {upstream!r} is not a table: no credential")
            continue
        header = (upstream.get("headers") or {}).get("Authorization")
        check_call("mcp-server", f"upstream {upstream['name']}: headers.Authorization", header, upstream["name"])


def check_compose_auth(compose_path, secrets_dir):
    base = os.path.dirname(os.path.abspath(compose_path))
    secrets_dir = os.path.realpath(secrets_dir)
    with open(compose_path) as f:
        config = yaml.safe_load(f)
    services = config["services"]
    top = config.get("secrets") or {}

    def local(relative):
        return os.path.realpath(os.path.join(base, relative))

    def made(path):
        return path.startswith(secrets_dir + os.sep) and os.path.isfile(path)

    for name, spec in top.items():
        path = local(spec.get("file", ""))
        if not made(path):
            problem(f"compose: secret {name}: {spec.get('file')} is not a file make-secrets.sh made in {secrets_dir}")
    mounts = {}
    for name in SERVICES:
        svc = services.get(name, {})
        targets = {}
        for entry in svc.get("secrets") or []:
            source = entry if isinstance(entry, str) else entry["source"]
            target = source if isinstance(entry, str) else entry.get("target", source)
            if not target.startswith("/"):
                target = f"/run/secrets/{target}"
            if source not in top:
                problem(f"compose: {name}: secret {source} is not defined")
                continue
            targets[target] = local(top[source]["file"])
        for volume in svc.get("volumes") or []:
            if isinstance(volume, str) and volume.startswith("."):
                host, container = volume.split(":")[:2]
                targets[container] = local(host)
        env_files = svc.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = local(env_file if isinstance(env_file, str) else env_file["path"])
            if not made(path):
                problem(f"compose: {name}: env_file {env_file} is not a file make-secrets.sh made")
            elif any(line.split("=", 1)[0].strip() == ADMIN_TOKEN for line in open(path)):
                problem(f"compose: {name}: env_file {env_file} puts {ADMIN_TOKEN} into the environment")
        mounts[name] = targets

    def env_of(service):
        env = services.get(service, {}).get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        return env

    def resolve(service, path):
        return mounts.get(service, {}).get(path)

    gateway_config = resolve("mcp-server", env_of("mcp-server").get("SWITCHBOARD_CONFIG") or "")
    check_auth_wiring("compose", env_of, resolve, gateway_config)
    finish("compose authentication")


def print_compose_env(compose_path, service, secrets_dir):
    """The authentication settings the compose file gives SERVICE, as VAR=value lines, with
    the paths of its secret mounts replaced by the files make-secrets.sh wrote to SECRETS_DIR:
    what scripts/multihost-test.sh runs each service with. The gateway's configuration file is
    left out (its upstreams differ there)."""
    with open(compose_path) as f:
        config = yaml.safe_load(f)
    svc = config["services"][service]
    top = config.get("secrets") or {}
    secrets_dir = os.path.abspath(secrets_dir)

    def in_secrets_dir(relative):
        parts = os.path.normpath(relative).split(os.sep)
        if "secrets" not in parts:
            raise SystemExit(f"compose-env: {relative} is not under ../secrets")
        return os.path.join(secrets_dir, *parts[parts.index("secrets") + 1:])

    targets = {}
    for entry in svc.get("secrets") or []:
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        if not target.startswith("/"):
            target = f"/run/secrets/{target}"
        targets[target] = in_secrets_dir(top[source]["file"])
    env = svc.get("environment") or {}
    for var, value in env.items():
        if value is None or var == "SWITCHBOARD_CONFIG":
            continue
        value = str(value)
        path = named_path(value)
        if path in targets:
            value = value.replace(path, targets[path])
        elif not (var.startswith(("MCP_SERVER_DELEGATES", "MCP_SERVER_POLICY"))):
            continue
        print(f"{var}={value}")
    env_files = svc.get("env_file") or []
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        with open(in_secrets_dir(env_file if isinstance(env_file, str) else env_file["path"])) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    print(line.rstrip("\n"))


def load_kustomization(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def generated_objects(directory):
    """(kind, namespace, name) -> {key: local file} of the generators of DIR's kustomization
    and of the kustomizations it includes as directories."""
    objects = {}
    kustomizations = [(directory, load_kustomization(directory))]
    for resource in kustomizations[0][1].get("resources", []):
        sub = os.path.join(directory, resource)
        if os.path.isdir(sub):
            kustomizations.append((sub, load_kustomization(sub)))
    for kdir, k in kustomizations:
        for kind, field in (("Secret", "secretGenerator"), ("ConfigMap", "configMapGenerator")):
            for gen in k.get(field) or []:
                namespace = gen.get("namespace") or k.get("namespace") or "default"
                keys = {}
                if gen.get("literals") and kind == "Secret":
                    problem(f"kubernetes: Secret {gen['name']} has literals: a secret value in a committed file")
                for entry in gen.get("files") or []:
                    key, _, path = entry.partition("=") if "=" in entry else (os.path.basename(entry), "", entry)
                    keys[key] = os.path.join(kdir, path)
                for env_file in gen.get("envs") or []:
                    path = os.path.join(kdir, env_file)
                    if not os.path.isfile(path):
                        problem(f"kubernetes: {kind} {gen['name']}: {path} does not exist (make-secrets.sh makes it)")
                        continue
                    with open(path) as f:
                        for line in f:
                            if "=" in line and not line.startswith("#"):
                                keys[line.split("=", 1)[0].strip()] = path
                for key, path in keys.items():
                    if not os.path.isfile(path):
                        problem(f"kubernetes: {kind} {gen['name']}: key {key} from {path}, which does not exist (make-secrets.sh makes it)")
                objects[(kind, namespace, gen["name"])] = keys
    return objects


def check_kubernetes_auth(directory):
    objects = generated_objects(directory)
    deployments = workloads(doc for _, doc in load_dir(directory))
    mounts = {}
    envs = {}
    for name, dep in deployments.items():
        namespace = dep["metadata"].get("namespace", "default")
        pod = dep["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}

        def referenced(kind, ref_name, key, optional, where):
            keys = objects.get((kind, namespace, ref_name))
            if keys is None:
                if not (optional and ref_name in OPERATOR_SECRETS):
                    problem(f"kubernetes: {name}: {where} names {kind} {namespace}/{ref_name}, which no generator makes from make-secrets.sh's files")
                return None
            if key is not None and key not in keys:
                problem(f"kubernetes: {name}: {where} names key {key} of {kind} {ref_name}, which has {sorted(keys)}")
            return keys

        for container in pod["containers"]:
            env = {}
            for e in container.get("env", []):
                env[e["name"]] = e.get("value")
                source = e.get("valueFrom") or {}
                for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if field in source:
                        ref = source[field]
                        referenced(kind, ref["name"], ref["key"], ref.get("optional", False), f"env {e['name']}")
                        if e["name"] == ADMIN_TOKEN:
                            problem(f"kubernetes: {name}: {ADMIN_TOKEN} comes from {kind} {ref['name']} into the environment; expected file:{SECRETS_MOUNT}/...")
            for source in container.get("envFrom", []):
                for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                    if field in source:
                        ref = source[field]
                        keys = referenced(kind, ref["name"], None, ref.get("optional", False), "envFrom")
                        if ADMIN_TOKEN in (keys or {}):
                            problem(f"kubernetes: {name}: envFrom {kind} {ref['name']} puts {ADMIN_TOKEN} into the environment")
            paths = {}
            for mount in container.get("volumeMounts", []):
                volume = volumes.get(mount["name"], {})
                for kind, field, name_field in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
                    if field in volume:
                        ref = volume[field]
                        keys = referenced(kind, ref[name_field], None, ref.get("optional", False), f"volume {mount['name']}")
                        for key, path in (keys or {}).items():
                            paths[f"{mount['mountPath'].rstrip('/')}/{key}"] = path
            envs[name] = env
            mounts[name] = paths

    def env_of(service):
        return envs.get(service, {})

    def resolve(service, path):
        return mounts.get(service, {}).get(path)

    gateway_config = resolve("mcp-server", env_of("mcp-server").get("SWITCHBOARD_CONFIG") or "")
    check_auth_wiring("kubernetes", env_of, resolve, gateway_config)
    compose_config = os.path.join(directory, "..", "compose", "mcp-server.toml")
    if gateway_config and os.path.isfile(gateway_config) and os.path.isfile(compose_config):
        if gateway_upstreams(gateway_config) != gateway_upstreams(compose_config):
            problem("kubernetes: mcp-server.toml's upstreams differ from ../compose/mcp-server.toml's")
    finish("kubernetes authentication")


# --- cert-manager (HTTPS) -------------------------------------------------------------------

# cert-manager's resources: kubernetes-validate has no schema for them, so their required fields
# are checked here (cert-manager.io/v1, as its CRDs say), and how the built manifests use them.
CERT_MANAGER_API = "cert-manager.io/v1"
ISSUER_TYPES = {"selfSigned", "ca", "acme", "vault", "venafi"}
KEY_USAGES = {
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime",
    "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
}
# Where a ClusterIssuer's CA Secret lives: cert-manager's --cluster-resource-namespace (default).
CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
# Whom each service admits (deploy/README.md, "Accounts"): a CA whose client certificates a
# service takes may sign client certificates for these callers only.
ADMITS = {
    "mcp-server": {"middleware"},
    "time-client": {"mcp-server"},
    "code-executor": {"mcp-server"},
    "sandbox": {"code-executor"},
    "middleware": set(),
}
# Who calls whom at the URL of which setting (the gateway's upstreams are in its config file).
URL_CALLS = [
    ("middleware", "MIDDLEWARE_GATEWAY_URL", "mcp-server"),
    ("code-executor", "CODE_EXECUTOR_SANDBOX_URL", "sandbox"),
]
GATEWAY_CONFIG_MAP = "switchboard-mcp-server-config"


def is_cert_manager(doc):
    return str(doc.get("apiVersion", "")).split("/")[0] == "cert-manager.io"


def load_build(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def print_core_resources(path):
    """The built resources without cert-manager's (kubernetes-validate knows no CRD schemas)."""
    print(yaml.safe_dump_all([d for d in load_build(path) if not is_cert_manager(d)], sort_keys=False), end="")


def client_capable(spec):
    """Whether a certificate can be shown as a client certificate: without usages it has no
    extended key usage, which a TLS server accepts for any purpose."""
    usages = set(spec.get("usages") or [])
    return not usages or bool(usages & {"client auth", "any"})


def dns_name_matches(name, host):
    """Whether a certificate's DNS name covers `host`: equal, or a `*.` wildcard standing for
    exactly one leftmost label (RFC 6125, as rustls/webpki match it)."""
    name, host = str(name).lower(), str(host or "").lower()
    if name.startswith("*."):
        label, _, rest = host.partition(".")
        return bool(label) and rest == name[2:]
    return name == host


def check_https_sandboxes(workloads_by_name, envs):
    """Over HTTPS the code-executor cannot resolve the sandbox's headless Service (it resolves
    only http URLs: an address would not match the certificate), so it must list every sandbox
    pod by its own name, sandbox-N.<service>.<namespace>.svc, one URL per replica; and each
    pod must admit that name as Host ($(POD_NAME) from metadata.name)."""
    sandbox = workloads_by_name.get("sandbox")
    if sandbox is None or sandbox["kind"] != "StatefulSet":
        return
    ns, name = sandbox["metadata"].get("namespace"), sandbox["metadata"]["name"]
    service = sandbox["spec"].get("serviceName")
    replicas = sandbox["spec"].get("replicas", 1)
    env = envs.get("code-executor", {})
    urls = [u.strip() for u in str(env.get("CODE_EXECUTOR_SANDBOX_URL") or "").split(",") if u.strip()]
    hosts = [urllib.parse.urlsplit(u).hostname for u in urls]
    pods = {f"{name}-{i}" for i in range(replicas)}
    named, suffixes = set(), set()
    for host in hosts:
        pod, _, rest = str(host).partition(".")
        if rest not in (f"{service}.{ns}.svc", f"{service}.{ns}.svc.cluster.local"):
            problem(f"code-executor: CODE_EXECUTOR_SANDBOX_URL names {host}, not a sandbox pod (<pod>.{service}.{ns}.svc): over HTTPS the name is not resolved into the sandboxes, so each connection would reach one of them")
        else:
            named.add(pod)
            suffixes.add(rest)
    if named != pods or len(hosts) != len(named):
        problem(f"code-executor: CODE_EXECUTOR_SANDBOX_URL names the pods {sorted(named)}, expected each of the sandbox's {replicas} replicas once ({sorted(pods)})")
    pod = sandbox["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    entries, order = env_list(container)
    allowed = str((entries.get("SWITCHBOARD_ALLOWED_HOSTS") or {}).get("value") or "").split(",")
    field = (entries.get("POD_NAME") or {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    for suffix in sorted(suffixes):
        if f"$(POD_NAME).{suffix}" not in allowed:
            problem(f"sandbox: SWITCHBOARD_ALLOWED_HOSTS lacks $(POD_NAME).{suffix}, the Host the code-executor sends over HTTPS")
    if suffixes and (field != "metadata.name" or order.index("POD_NAME") > order.index("SWITCHBOARD_ALLOWED_HOSTS")):
        problem("sandbox: POD_NAME is not metadata.name defined before SWITCHBOARD_ALLOWED_HOSTS")


def check_cert_manager(build_path, base_gateway_config):
    """The kustomize build with deploy/kubernetes/cert-manager: its cert-manager resources are
    well-formed and consistent, and the services serve HTTPS with them, call each other over
    https:// trusting the CA that signed the callee, and take client certificates only from a
    CA that signs certificates of callers they admit."""
    docs = load_build(build_path)
    certificates, issuers, by_secret = {}, {}, {}
    for doc in docs:
        if not is_cert_manager(doc):
            continue
        kind, meta = doc.get("kind"), doc.get("metadata") or {}
        name, ns = meta.get("name"), meta.get("namespace")
        where = f"{kind} {ns + '/' if ns else ''}{name}"
        if doc.get("apiVersion") != CERT_MANAGER_API:
            problem(f"{where}: apiVersion {doc.get('apiVersion')}, expected {CERT_MANAGER_API}")
        if kind not in ("Certificate", "Issuer", "ClusterIssuer"):
            problem(f"{where}: unexpected cert-manager kind")
            continue
        if not name:
            problem(f"{where}: no metadata.name")
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            problem(f"{where}: no spec")
            continue
        if kind == "ClusterIssuer" and ns:
            problem(f"{where}: a ClusterIssuer is cluster-scoped, but has a namespace")
        if kind != "ClusterIssuer" and not ns:
            problem(f"{where}: no namespace")
        if kind == "Certificate":
            ref = spec.get("issuerRef")
            if not isinstance(spec.get("secretName"), str) or not spec.get("secretName"):
                problem(f"{where}: spec.secretName is required")
            if not isinstance(ref, dict) or not ref.get("name"):
                problem(f"{where}: spec.issuerRef.name is required")
                continue
            if ref.get("kind", "Issuer") not in ("Issuer", "ClusterIssuer"):
                problem(f"{where}: issuerRef.kind {ref.get('kind')} is not Issuer or ClusterIssuer")
            if ref.get("group", "cert-manager.io") != "cert-manager.io":
                problem(f"{where}: issuerRef.group {ref.get('group')} is not cert-manager.io")
            if not any(spec.get(k) for k in ("commonName", "dnsNames", "uris", "ipAddresses", "emailAddresses", "otherNames", "literalSubject")):
                problem(f"{where}: names nothing (commonName, dnsNames, ...)")
            if len(str(spec.get("commonName", ""))) > 64:
                problem(f"{where}: commonName longer than 64 characters")
            unknown = set(spec.get("usages") or []) - KEY_USAGES
            if unknown:
                problem(f"{where}: unknown usages {sorted(unknown)}")
            key = spec.get("privateKey") or {}
            for field, allowed in (("algorithm", {"RSA", "ECDSA", "Ed25519"}), ("encoding", {"PKCS1", "PKCS8"}), ("rotationPolicy", {"Never", "Always"})):
                if field in key and key[field] not in allowed:
                    problem(f"{where}: privateKey.{field} {key[field]} is not one of {sorted(allowed)}")
            certificates[(ns, name)] = spec
            if isinstance(spec.get("secretName"), str):
                if (ns, spec["secretName"]) in by_secret:
                    problem(f"{where}: Secret {spec['secretName']} is also made by Certificate {by_secret[(ns, spec['secretName'])][1]}")
                by_secret[(ns, spec["secretName"])] = (ns, name)
        else:
            types = sorted(t for t in ISSUER_TYPES if t in spec)
            if len(types) != 1:
                problem(f"{where}: needs exactly one of {sorted(ISSUER_TYPES)}, has {types}")
            if "ca" in spec and not (spec["ca"] or {}).get("secretName"):
                problem(f"{where}: spec.ca.secretName is required")
            issuers[(kind, ns if kind == "Issuer" else None, name)] = spec

    def issuer_of(cert):
        ref = certificates[cert].get("issuerRef") or {}
        kind = ref.get("kind", "Issuer")
        key = (kind, cert[0] if kind == "Issuer" else None, ref.get("name"))
        return key if key in issuers else None

    def ca_certificate(issuer):
        """The Certificate whose Secret a CA issuer signs with."""
        spec = issuers[issuer].get("ca")
        if not spec:
            return None
        namespace = issuer[1] if issuer[0] == "Issuer" else CLUSTER_RESOURCE_NAMESPACE
        return by_secret.get((namespace, spec.get("secretName")))

    def anchor(cert):
        """The CA certificate a Secret's ca.crt holds: the signer's, or itself when self-signed."""
        issuer = issuer_of(cert)
        if issuer is None:
            return None
        return cert if "selfSigned" in issuers[issuer] else ca_certificate(issuer)

    for cert in certificates:
        if issuer_of(cert) is None:
            ref = certificates[cert]["issuerRef"]
            problem(f"Certificate {cert[0]}/{cert[1]}: {ref.get('kind', 'Issuer')} {ref.get('name')} is not in the build")
    for issuer, spec in issuers.items():
        if "ca" not in spec:
            continue
        ca = ca_certificate(issuer)
        namespace = issuer[1] if issuer[0] == "Issuer" else CLUSTER_RESOURCE_NAMESPACE
        if ca is None:
            problem(f"{issuer[0]} {issuer[2]}: ca.secretName {spec['ca'].get('secretName')} is made by no Certificate in namespace {namespace}")
        elif not certificates[ca].get("isCA"):
            problem(f"{issuer[0]} {issuer[2]}: signs with Certificate {ca[1]}, which is not isCA")

    deployments = workloads(docs)
    mounts, envs, serving = {}, {}, {}
    for service in SERVICES:
        dep = deployments.get(service)
        if dep is None:
            problem(f"workload (Deployment or StatefulSet) {service} missing")
            continue
        ns = dep["metadata"].get("namespace")
        template = dep["spec"]["template"]
        pod = template["spec"]
        (container,) = pod["containers"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        paths = {}
        for mount in container.get("volumeMounts", []):
            secret = volumes.get(mount["name"], {}).get("secret")
            cert = by_secret.get((ns, secret.get("secretName"))) if secret else None
            if cert is None:
                continue
            items = {i["path"]: i["key"] for i in secret.get("items") or []} or {k: k for k in ("tls.crt", "tls.key", "ca.crt")}
            for path, key in items.items():
                paths[f"{mount['mountPath'].rstrip('/')}/{path}"] = (cert, key)
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        mounts[service], envs[service] = paths, env

        def file_of(setting, value, key, service=service, paths=paths):
            entry = paths.get(str(value or ""))
            if entry is None:
                problem(f"{service}: {setting}={value!r} is not a file of a mounted cert-manager Secret")
                return None
            if entry[1] != key:
                problem(f"{service}: {setting}={value!r} is the Secret's {entry[1]}, expected {key}")
                return None
            return entry[0]

        cert = file_of("SWITCHBOARD_TLS_CERT", env.get("SWITCHBOARD_TLS_CERT"), "tls.crt")
        key = file_of("SWITCHBOARD_TLS_KEY", env.get("SWITCHBOARD_TLS_KEY"), "tls.key")
        if cert and key and cert != key:
            problem(f"{service}: its certificate and key come from different Secrets")
        if cert:
            spec = certificates[cert]
            usages = set(spec.get("usages") or [])
            if "server auth" not in usages:
                problem(f"{service}: its certificate {cert[1]} lacks usage server auth")
            if client_capable(spec):
                problem(f"{service}: its serving certificate {cert[1]} could also be shown as a client certificate (usages {sorted(usages)})")
            if spec.get("isCA"):
                problem(f"{service}: serves with a CA certificate")
            wanted = {service, f"{service}.{ns}", f"{service}.{ns}.svc", f"{service}.{ns}.svc.cluster.local"}
            missing = wanted - set(spec.get("dnsNames") or [])
            if missing:
                problem(f"{service}: its certificate {cert[1]} lacks the Service's names {sorted(missing)}")
            serving[service] = cert
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = (container.get(probe) or {}).get("httpGet")
            if get is not None and get.get("scheme") != "HTTPS":
                problem(f"{service}: {probe} does not use scheme HTTPS")
        if (template["metadata"].get("annotations") or {}).get("prometheus.io/scheme") != "https":
            problem(f"{service}: no prometheus.io/scheme: https annotation")
        if env.get("SWITCHBOARD_CLIENT_CA") is not None:
            ca = file_of("SWITCHBOARD_CLIENT_CA", env["SWITCHBOARD_CLIENT_CA"], "ca.crt")
            root = anchor(ca) if ca else None
            if ca and root is None:
                problem(f"{service}: SWITCHBOARD_CLIENT_CA: no CA behind {ca[1]}")
            if root:
                signers = [i for i in issuers if ca_certificate(i) == root]
                for issuer in signers:
                    if issuer[0] == "ClusterIssuer":
                        problem(f"{service} takes client certificates of ClusterIssuer {issuer[2]}'s CA: any namespace may request certificates from it")
                for other, spec in certificates.items():
                    if issuer_of(other) in signers and client_capable(spec) and not spec.get("isCA") and spec.get("commonName") not in ADMITS[service]:
                        problem(f"{service} takes client certificates of {root[1]}, which also signs {other[1]} (CN {spec.get('commonName')!r}), a caller {service} does not admit")

    def check_https_call(caller, what, url, ca, callee):
        parts = urllib.parse.urlsplit(str(url or ""))
        if parts.scheme != "https":
            problem(f"{caller}: {what} {url!r} is not https://")
        cert = serving.get(callee)
        if cert is None:
            return
        if not any(dns_name_matches(name, parts.hostname) for name in certificates[cert].get("dnsNames") or []):
            problem(f"{caller}: {what} {url!r}: {parts.hostname} is not a name of {callee}'s certificate")
        if ca is not None and anchor(ca) != anchor(cert):
            problem(f"{caller}: {what}: trusts {anchor(ca)}, but {callee}'s certificate is signed by {anchor(cert)}")

    for caller, setting, callee in URL_CALLS:
        env = envs.get(caller, {})
        entry = mounts.get(caller, {}).get(str(env.get("SWITCHBOARD_CA_FILE") or ""))
        if entry is None or entry[1] != "ca.crt":
            problem(f"{caller}: SWITCHBOARD_CA_FILE={env.get('SWITCHBOARD_CA_FILE')!r} is not the ca.crt of a mounted cert-manager Secret")
        # CODE_EXECUTOR_SANDBOX_URL may list several sandboxes.
        for url in str(env.get(setting) or "").split(","):
            check_https_call(caller, setting, url.strip(), entry[0] if entry else None, callee)
    check_https_sandboxes(deployments, envs)

    # The gateway's configuration: its upstreams over HTTPS, with a CA and its client certificate.
    maps = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"].startswith(GATEWAY_CONFIG_MAP)]
    if len(maps) != 1 or "mcp-server.toml" not in (maps[0].get("data") or {}):
        problem(f"the build has {len(maps)} ConfigMaps {GATEWAY_CONFIG_MAP} with mcp-server.toml, expected 1")
    else:
        upstreams = tomllib.loads(maps[0]["data"]["mcp-server.toml"]).get("mcp-server", {}).get("upstreams", [])
        base = {u["name"]: u for u in gateway_upstreams(base_gateway_config) if isinstance(u, dict)}
        paths = mounts.get("mcp-server", {})
        if sorted(u.get("name", "") for u in upstreams if isinstance(u, dict)) != sorted(base):
            problem(f"the gateway's upstreams differ from {base_gateway_config}'s")
        for upstream in upstreams:
            name = upstream.get("name") if isinstance(upstream, dict) else str(upstream)
            if not isinstance(upstream, dict):
                problem(f"mcp-server: upstream {name} is not a table (no CA, no client certificate)")
                continue
            if upstream.get("headers") != (base.get(name) or {}).get("headers"):
                problem(f"mcp-server: upstream {name}: headers differ from {base_gateway_config}'s (the API key stays)")
            ca = paths.get(str(upstream.get("ca_file")))
            if ca is None or ca[1] != "ca.crt":
                problem(f"mcp-server: upstream {name}: ca_file {upstream.get('ca_file')!r} is not the ca.crt of a mounted cert-manager Secret")
            check_https_call("mcp-server", f"upstream {name}", upstream.get("url"), ca[0] if ca else None, name)
            cert, key = paths.get(str(upstream.get("client_cert"))), paths.get(str(upstream.get("client_key")))
            if not cert or not key or cert[1] != "tls.crt" or key[1] != "tls.key" or cert[0] != key[0]:
                problem(f"mcp-server: upstream {name}: client_cert/client_key are not tls.crt/tls.key of one mounted cert-manager Secret")
                continue
            spec = certificates[cert[0]]
            if "client auth" not in set(spec.get("usages") or []):
                problem(f"mcp-server: its client certificate {cert[0][1]} lacks usage client auth")
            if spec.get("commonName") != "mcp-server":
                problem(f"mcp-server: its client certificate names {spec.get('commonName')!r}, not its account mcp-server")
            callee_ca = envs.get(name, {}).get("SWITCHBOARD_CLIENT_CA")
            entry = mounts.get(name, {}).get(str(callee_ca or ""))
            if entry is None or anchor(entry[0]) != anchor(cert[0]):
                problem(f"{name}: does not take the gateway's client certificate (SWITCHBOARD_CLIENT_CA {callee_ca!r})")
    finish("cert-manager")


# --- rules, dashboard, metric names --------------------------------------------------------


def check_rules(alerts_path, prometheus_rule_path):
    with open(alerts_path) as f:
        alerts = yaml.safe_load(f)
    with open(prometheus_rule_path) as f:
        rule = yaml.safe_load(f)
    if rule.get("kind") != "PrometheusRule":
        problem(f"{prometheus_rule_path} is not a PrometheusRule")
    elif rule["spec"]["groups"] != alerts["groups"]:
        problem(f"{prometheus_rule_path} groups differ from {alerts_path}; regenerate it")
    finish("alert rules in step")


def print_prometheus_rule(alerts_path):
    with open(alerts_path) as f:
        alerts = yaml.safe_load(f)
    print("# Generated from deploy/compose/prometheus/alerts.yml by")
    print("#   scripts/deploy_checks.py prometheus-rule deploy/compose/prometheus/alerts.yml")
    print("# CI checks that the two agree; edit alerts.yml, then regenerate.")
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "switchboard",
            "namespace": "switchboard",
            "labels": {"app.kubernetes.io/part-of": "switchboard"},
        },
        "spec": {"groups": alerts["groups"]},
    }
    print(yaml.safe_dump(rule, sort_keys=False, width=100), end="")


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def check_dashboard(dash_path, datasources_path):
    with open(datasources_path) as f:
        uids = {d["uid"] for d in yaml.safe_load(f)["datasources"]}
    with open(dash_path) as f:
        dash = json.load(f)
    if not dash.get("uid") or not dash.get("title"):
        problem("dashboard without uid or title")
    titles = [p["title"] for p in dash["panels"]]
    for needed in ("Tool calls per second", "latency", "ratio", "Upstream health", "pool", "Executions per second, by outcome"):
        if not any(needed.lower() in t.lower() for t in titles):
            problem(f"no panel about {needed!r}")
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") not in uids:
            problem(f"panel {panel['title']!r}: datasource not provisioned")
        if not panel.get("targets"):
            problem(f"panel {panel['title']!r}: no query")
    finish("dashboard")


# Words in PromQL that are not metric names.
PROMQL_WORDS = {
    "sum", "by", "rate", "histogram_quantile", "le", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "avg", "max", "min", "count", "increase", "irate",
    "bool", "offset", "topk", "bottomk", "abs", "clamp_min", "clamp_max", "inf", "nan",
}


def metric_names_in(expr):
    expr = re.sub(r"\{[^}]*\}", "", expr)          # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)         # range selectors
    expr = re.sub(r'"[^"]*"', "", expr)            # strings
    expr = re.sub(r"\bby\s*\([^)]*\)", "", expr)   # grouping labels
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and not n.startswith("__")}


def exprs_in(path):
    if path.endswith(".json"):
        return [t["expr"] for _, t in dashboard_exprs(path)]
    with open(path) as f:
        doc = yaml.safe_load(f)
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def registered_in_source(source_dir):
    """Metric names the services register (`metrics.register("name", ...)` in their source), with
    the sample names a counter or histogram of that name has."""
    names = set()
    for path in glob.glob(os.path.join(source_dir, "*", "src", "**", "*.rs"), recursive=True):
        with open(path) as f:
            for name in re.findall(r'\.register\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', f.read()):
                names.update({name, f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def check_metric_names(source_dir, metric_files, files):
    """A name used in a query must be registered by a service; those exposed by the running
    services (after a few calls) are reported as checked against the real output."""
    registered = registered_in_source(source_dir)
    exposed = {"up"}
    for path in metric_files:
        with open(path) as f:
            for line in f:
                m = re.match(r"# TYPE (\S+) (\S+)", line)
                if m:
                    name, kind = m.groups()
                    exposed.add(name)
                    if kind == "histogram":
                        exposed.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    used = {}
    for path in files:
        for expr in exprs_in(path):
            for name in metric_names_in(expr):
                used.setdefault(name, set()).add(os.path.basename(path))
    unknown = sorted(n for n in used if n not in exposed and n not in registered)
    quiet = sorted(n for n in used if n not in exposed and n in registered)
    for name in quiet:
        print(f"metric names: {name} (used in {', '.join(sorted(used[name]))}) is registered in the source; no sample yet, or its service is not in `switchboard up`")
    for name in unknown:
        problem(f"{name} (used in {', '.join(sorted(used[name]))}) is registered by no service")
    print(f"metric names: {len(used) - len(quiet) - len(unknown)} of {len(used)} used names seen in the running services' /metrics")
    finish("metric names")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["compose"] and len(args) == 2:
        check_compose(args[1])
    elif args[:1] == ["compose-scaled"] and len(args) == 2:
        check_compose(args[1], scaled=True)
    elif args[:1] == ["kubernetes"] and len(args) == 2:
        check_kubernetes(args[1])
    elif args[:1] == ["auth-compose"] and len(args) == 3:
        check_compose_auth(args[1], args[2])
    elif args[:1] == ["auth-kubernetes"] and len(args) == 2:
        check_kubernetes_auth(args[1])
    elif args[:1] == ["cert-manager"] and len(args) == 3:
        check_cert_manager(args[1], args[2])
    elif args[:1] == ["core-resources"] and len(args) == 2:
        print_core_resources(args[1])
    elif args[:1] == ["compose-env"] and len(args) == 4:
        print_compose_env(args[1], args[2], args[3])
    elif args[:1] == ["rules"] and len(args) == 3:
        check_rules(args[1], args[2])
    elif args[:1] == ["prometheus-rule"] and len(args) == 2:
        print_prometheus_rule(args[1])
    elif args[:1] == ["dashboard"] and len(args) == 3:
        check_dashboard(args[1], args[2])
    elif args[:1] == ["metric-names"] and "--" in args and len(args) > 3:
        split = args.index("--")
        check_metric_names(args[1], args[2:split], args[split + 1:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
