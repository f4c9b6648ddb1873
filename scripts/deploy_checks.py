#!/usr/bin/python3
"""What the deployment files promise, checked on the files themselves.

Schema validators (docker-compose config, kubernetes-validate, promtool) prove the files are
well-formed; these checks prove they say what deploy/README.md says they say: health checks on
/ready, start order by health, the sandbox reachable only from the code-executor, limits and
hardening everywhere, one set of alert rules for compose and Kubernetes, and a dashboard whose
queries name metrics that exist.

    deploy_checks.py compose CONFIG_YAML          (output of `docker-compose config`)
    deploy_checks.py kubernetes DIR
    deploy_checks.py rules ALERTS_YML PROMETHEUS_RULE_YAML
    deploy_checks.py prometheus-rule ALERTS_YML > PROMETHEUS_RULE_YAML   (generate it)
    deploy_checks.py dashboard DASHBOARD_JSON DATASOURCES_YML
    deploy_checks.py metric-names SOURCE_DIR METRICS_FILE... -- FILE...   (names used exist)

Exit status 1 with one line per problem; uses only the standard library and PyYAML.
"""

import glob
import json
import os
import re
import sys

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


def finish(what):
    if problems:
        for p in problems:
            print(f"{what}: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"{what}: ok")


# --- compose -------------------------------------------------------------------------------


def check_compose(path):
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
    for tool in ("prometheus", "grafana"):
        if tool not in services or "healthcheck" not in services[tool]:
            problem(f"{tool}: missing or without healthcheck")
    finish("compose policy")


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
    listed = set(kustomization.get("resources", []))
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
    deployments = by_kind.get("Deployment", {})
    for name, port in SERVICES.items():
        dep = deployments.get(name)
        if dep is None:
            problem(f"Deployment {name} missing")
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
    hpas = {d["spec"]["scaleTargetRef"]["name"] for d in by_kind.get("HorizontalPodAutoscaler", {}).values()}
    if hpas != {"middleware", "time-client", "code-executor"}:
        problem(f"HPAs for {sorted(hpas)}, expected the stateless middleware, time-client, code-executor")
    finish("kubernetes policy")


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
    elif args[:1] == ["kubernetes"] and len(args) == 2:
        check_kubernetes(args[1])
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
