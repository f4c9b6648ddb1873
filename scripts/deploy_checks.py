#!/usr/bin/python3
"""What the deployment files promise, checked on the files themselves.

Schema validators (docker-compose config, kubernetes-validate, promtool) prove the files are
well-formed; these checks prove they say what deploy/README.md says they say: health checks on
/ready, start order by health, the sandbox reachable only from the code-executor, limits and
hardening everywhere, one set of alert rules for compose and Kubernetes, and a dashboard whose
queries name metrics that exist.

    deploy_checks.py compose CONFIG_YAML          (output of `docker-compose config`)
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
    # The admin token is a file: `docker-compose config` merges env_file into environment, so
    # a value from either would show here.
    admin = str((sandbox.get("environment") or {}).get(ADMIN_TOKEN) or "")
    if not admin.startswith(f"file:{SECRETS_MOUNT}/"):
        problem(f"sandbox: {ADMIN_TOKEN} is {'a value' if admin else 'unset'}, expected file:{SECRETS_MOUNT}/...")
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
    if hpas != {"middleware", "mcp-server", "time-client", "code-executor"}:
        problem(f"HPAs for {sorted(hpas)}, expected the middleware, mcp-server, time-client, code-executor")
    gateway_service = by_kind.get("Service", {}).get("mcp-server", {})
    if gateway_service.get("spec", {}).get("sessionAffinity"):
        problem("the mcp-server Service has session affinity; its sealed session ids need none")
    finish("kubernetes policy")


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
    deployments = {doc["metadata"]["name"]: doc for _, doc in load_dir(directory) if doc["kind"] == "Deployment"}
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

    deployments = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Deployment"}
    mounts, envs, serving = {}, {}, {}
    for service in SERVICES:
        dep = deployments.get(service)
        if dep is None:
            problem(f"Deployment {service} missing")
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
        if parts.hostname not in set(certificates[cert].get("dnsNames") or []):
            problem(f"{caller}: {what} {url!r}: {parts.hostname} is not a name of {callee}'s certificate")
        if ca is not None and anchor(ca) != anchor(cert):
            problem(f"{caller}: {what}: trusts {anchor(ca)}, but {callee}'s certificate is signed by {anchor(cert)}")

    for caller, setting, callee in URL_CALLS:
        env = envs.get(caller, {})
        entry = mounts.get(caller, {}).get(str(env.get("SWITCHBOARD_CA_FILE") or ""))
        if entry is None or entry[1] != "ca.crt":
            problem(f"{caller}: SWITCHBOARD_CA_FILE={env.get('SWITCHBOARD_CA_FILE')!r} is not the ca.crt of a mounted cert-manager Secret")
        check_https_call(caller, setting, env.get(setting), entry[0] if entry else None, callee)

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
