#!/usr/bin/env bash
# Generate the credentials the Compose and Kubernetes deployments read, into a directory that
# git ignores (default deploy/secrets/). Keys are made by `switchboard auth new-key`; the API
# keys files hold only their SHA-256 digests.
#
#   deploy/make-secrets.sh                       # make whatever is missing (idempotent)
#   deploy/make-secrets.sh --force               # new keys for every account, new admin token
#   deploy/make-secrets.sh --add-user NAME [--groups G,G] [--expires RFC3339]
#   deploy/make-secrets.sh --rotate NAME [--keep-previous]
#   deploy/make-secrets.sh --drop-previous [NAME]
#   deploy/make-secrets.sh --remove-user NAME
#   options: --dir DIR (where the files go; default: deploy/secrets next to this script)
#
# The switchboard binary: $SWITCHBOARD_BIN (a command, e.g. "docker run --rm switchboard:local"),
# else `switchboard` on PATH, else target/release or target/debug of this repository.
#
# Accounts, who admits them (the service's API keys file), and where their key goes:
#
#   account        role           admitted by                        key written to
#   middleware     middleware     mcp-server                          middleware/gateway-token
#   mcp-server     mcp-server     time-client, code-executor          mcp-server/upstream-authorization ("Bearer <key>")
#   code-executor  code-executor  sandbox                             code-executor/sandbox-token
#   operator       operator       mcp-server, middleware, sandbox     keys/operator.key (groups: operators)
#   example-user   user           mcp-server, middleware              keys/example-user.key (groups: users)
#   --add-user N   user           mcp-server, middleware              keys/N.key
#
# Other files: <service>/api-keys.toml (each service's SWITCHBOARD_API_KEYS, rebuilt from
# accounts/*.toml on every run), mcp-server/policy.toml (a starter policy, written only when
# missing: edit it, it is never overwritten), mcp-server/session-key (32 random bytes the gateway's
# replicas seal MCP session ids with; made once), sandbox/admin-token (the sandbox's admin token, for
# approving held package installs: SANDBOX_ADMIN_TOKEN=file:...). accounts/NAME.toml is each account's [[key]] entry (digest
# only) and role; accounts/NAME.previous.toml a rotated-out key still admitted (--keep-previous).
#
# Files are rewritten in place (same inode), so a Compose bind mount of an API keys file sees the
# change and the service rereads it within a second. The directory is 0700; the files the
# containers mount are 0644 inside it (the containers run as other uids), the people's keys
# under keys/ 0600. See deploy/README.md, "Authentication".
set -euo pipefail
umask 077

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
dir=$here/secrets
force=0
action=generate
target=
groups=
expires=
keep_previous=0

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'make-secrets: %s\n' "$*" >&2; exit 1; }
say() { printf 'make-secrets: %s\n' "$*"; }

set_action() {
  [ "$action" = generate ] || die "one of --add-user, --rotate, --drop-previous, --remove-user at a time"
  action=$1
}
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --force) force=1; shift ;;
    --add-user) set_action add-user; target=${2:?--add-user needs a name}; shift 2 ;;
    --groups) groups=${2:?--groups needs a list}; shift 2 ;;
    --expires) expires=${2:?--expires needs a time}; shift 2 ;;
    --rotate) set_action rotate; target=${2:?--rotate needs a name}; shift 2 ;;
    --keep-previous) keep_previous=1; shift ;;
    --drop-previous)
      set_action drop-previous
      if [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; then target=$2; shift; fi
      shift ;;
    --remove-user) set_action remove-user; target=${2:?--remove-user needs a name}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) printf 'make-secrets: unknown argument %s\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$groups$expires" ] && [ "$action" != add-user ]; then
  die "--groups and --expires go with --add-user"
fi
if [ "$keep_previous" = 1 ] && [ "$action" != rotate ]; then
  die "--keep-previous goes with --rotate"
fi

# --- the switchboard binary ----------------------------------------------------------------
if [ -n "${SWITCHBOARD_BIN:-}" ]; then
  read -r -a switchboard <<<"$SWITCHBOARD_BIN"
elif command -v switchboard >/dev/null; then
  switchboard=(switchboard)
elif [ -x "$repo/target/release/switchboard" ]; then
  switchboard=("$repo/target/release/switchboard")
elif [ -x "$repo/target/debug/switchboard" ]; then
  switchboard=("$repo/target/debug/switchboard")
else
  die "no switchboard binary: set SWITCHBOARD_BIN, put switchboard on PATH, or cargo build -p switchboard"
fi

# --- accounts ------------------------------------------------------------------------------
SERVICES=(mcp-server middleware time-client code-executor sandbox)
SERVICE_ACCOUNTS=(middleware mcp-server code-executor)

# admitted_by ROLE: the services whose API keys file lists an account of ROLE.
admitted_by() {
  case $1 in
    middleware) echo mcp-server ;;
    mcp-server) echo time-client code-executor ;;
    code-executor) echo sandbox ;;
    operator) echo mcp-server middleware sandbox ;;
    user) echo mcp-server middleware ;;
    *) die "unknown role '$1'" ;;
  esac
}

# role_of NAME: the role of an existing account (from its entry file).
role_of() {
  sed -n 's/^# role: //p' "$dir/accounts/$1.toml" | head -n1
}

# write FILE MODE: stdin into FILE, in place when it exists (a bind mount keeps seeing it).
write() {
  local file=$1 mode=$2 content
  content=$(cat; echo x)
  content=${content%x}
  mkdir -p "$(dirname "$file")"
  if [ -f "$file" ] && [ "$(cat "$file"; echo x)" = "${content}x" ]; then
    chmod "$mode" "$file"
    return 0
  fi
  [ -f "$file" ] || : >"$file"
  chmod "$mode" "$file"
  printf '%s' "$content" >"$file"
}

# key_file ROLE NAME: where the key of account NAME goes, and how (plain or "Bearer <key>").
key_file() {
  case $1 in
    middleware) echo "middleware/gateway-token" ;;
    mcp-server) echo "mcp-server/upstream-authorization" ;;
    code-executor) echo "code-executor/sandbox-token" ;;
    operator|user) echo "keys/$2.key" ;;
  esac
}
key_mode() { case $1 in operator|user) echo 600 ;; *) echo 644 ;; esac; }

# make_key NAME ROLE [GROUPS [EXPIRES]]: a new key for NAME; writes its entry and its key file.
make_key() {
  local name=$1 role=$2 groups=${3:-} expires=${4:-} output key entry args=()
  [ -n "$groups" ] && args+=(--groups "$groups")
  [ -n "$expires" ] && args+=(--expires "$expires")
  output=$("${switchboard[@]}" auth new-key "$name" "${args[@]}") || die "switchboard auth new-key $name failed"
  key=$(head -n1 <<<"$output")
  entry=$(sed -e '1d' -e '/^#/d' <<<"$output")
  if [[ $key != sbk_* ]] || ! grep -q '^sha256 = ' <<<"$entry"; then
    die "unexpected output of switchboard auth new-key"
  fi
  printf '# role: %s\n# made: %s\n%s\n' "$role" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$entry" |
    write "$dir/accounts/$name.toml" 600
  if [ "$role" = mcp-server ]; then
    printf 'Bearer %s\n' "$key"
  else
    printf '%s\n' "$key"
  fi | write "$dir/$(key_file "$role" "$name")" "$(key_mode "$role")"
}

valid_user_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$ ]] || die "'$1': a user name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"
  case $1 in
    *.previous) die "'$1': names ending in .previous are reserved" ;;
  esac
  for reserved in "${SERVICE_ACCOUNTS[@]}" operator; do
    [ "$1" != "$reserved" ] || die "'$1' is a service account's name"
  done
}

# --- the run -------------------------------------------------------------------------------
fresh=0
[ -d "$dir/accounts" ] || fresh=1
mkdir -p "$dir/accounts" "$dir/keys"
chmod 700 "$dir" "$dir/accounts" "$dir/keys"
for service in "${SERVICES[@]}"; do
  mkdir -p "$dir/$service"
  chmod 700 "$dir/$service"
done

case $action in
  generate)
    for name in "${SERVICE_ACCOUNTS[@]}"; do
      if [ "$force" = 1 ] || [ ! -f "$dir/accounts/$name.toml" ] || [ ! -f "$dir/$(key_file "$name" "$name")" ]; then
        make_key "$name" "$name"
        say "key for $name (role $name)"
      fi
    done
    if [ "$force" = 1 ] || [ ! -f "$dir/accounts/operator.toml" ] || [ ! -f "$dir/keys/operator.key" ]; then
      make_key operator operator operators
      say "key for operator (groups operators): $dir/keys/operator.key"
    fi
    if [ "$fresh" = 1 ]; then
      make_key example-user user users
      say "key for example-user (groups users): $dir/keys/example-user.key"
    elif [ "$force" = 1 ]; then
      for entry in "$dir"/accounts/*.toml; do
        name=$(basename "$entry" .toml)
        [[ $name == *.previous ]] && continue
        [ "$(role_of "$name")" = user ] || continue
        make_key "$name" user "$(sed -n 's/^groups = \[\(.*\)\]$/\1/p' "$entry" | tr -d '" ')" \
          "$(sed -n 's/^expires = "\(.*\)"$/\1/p' "$entry")"
        say "new key for $name: $dir/keys/$name.key"
      done
    fi
    # The sandbox's admin token, a file of its own (SANDBOX_ADMIN_TOKEN=file:...). Earlier
    # versions wrote it as sandbox/admin.env (SANDBOX_ADMIN_TOKEN=...): its token is kept.
    if [ "$force" != 1 ] && [ ! -f "$dir/sandbox/admin-token" ] && [ -f "$dir/sandbox/admin.env" ]; then
      token=$(sed -n 's/^SANDBOX_ADMIN_TOKEN=//p' "$dir/sandbox/admin.env" | head -n1)
      if [ -n "$token" ]; then
        printf '%s\n' "$token" | write "$dir/sandbox/admin-token" 644
        rm -f "$dir/sandbox/admin.env"
        say "sandbox admin token moved from sandbox/admin.env to $dir/sandbox/admin-token"
      fi
    fi
    if [ "$force" = 1 ] || [ ! -f "$dir/sandbox/admin-token" ]; then
      token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
      printf 'sba_%s\n' "$token" | write "$dir/sandbox/admin-token" 644
      rm -f "$dir/sandbox/admin.env"
      say "sandbox admin token (package approvals): $dir/sandbox/admin-token"
    fi
    ;;
  add-user)
    valid_user_name "$target"
    if [ -f "$dir/accounts/$target.toml" ] && [ "$force" != 1 ]; then
      die "user '$target' exists (--rotate $target for a new key, or --force)"
    fi
    make_key "$target" user "${groups:-users}" "$expires"
    say "key for $target (groups ${groups:-users}): $dir/keys/$target.key — hand it over, then delete the file"
    ;;
  rotate)
    [ -f "$dir/accounts/$target.toml" ] || die "no account '$target' in $dir/accounts"
    role=$(role_of "$target")
    entry=$dir/accounts/$target.toml
    if [ "$keep_previous" = 1 ]; then
      write "$dir/accounts/$target.previous.toml" 600 <"$entry"
    else
      rm -f "$dir/accounts/$target.previous.toml"
    fi
    make_key "$target" "$role" "$(sed -n 's/^groups = \[\(.*\)\]$/\1/p' "$entry" | tr -d '" ')" \
      "$(sed -n 's/^expires = "\(.*\)"$/\1/p' "$entry")"
    if [ "$keep_previous" = 1 ]; then
      say "new key for $target; the previous one stays admitted until --drop-previous $target"
    else
      say "new key for $target; the previous one is no longer admitted"
    fi
    ;;
  drop-previous)
    if [ -n "$target" ]; then
      [ -f "$dir/accounts/$target.previous.toml" ] || die "no previous key of '$target'"
      rm -f "$dir/accounts/$target.previous.toml"
    else
      rm -f "$dir"/accounts/*.previous.toml
    fi
    say "previous keys dropped"
    ;;
  remove-user)
    [ -f "$dir/accounts/$target.toml" ] || die "no account '$target'"
    [ "$(role_of "$target")" = user ] || die "'$target' is not a user account"
    rm -f "$dir/accounts/$target.toml" "$dir/accounts/$target.previous.toml" "$dir/keys/$target.key"
    say "removed $target"
    ;;
esac

# The API keys file of each service, from the accounts it admits (digests only).
for service in "${SERVICES[@]}"; do
  {
    printf '# API keys the %s admits (SWITCHBOARD_API_KEYS): made by deploy/make-secrets.sh from\n' "$service"
    printf '# accounts/*.toml; edits here are replaced on its next run. Digests only.\n'
    for entry in "$dir"/accounts/*.toml; do
      [ -f "$entry" ] || continue
      role=$(sed -n 's/^# role: //p' "$entry" | head -n1)
      for admitting in $(admitted_by "$role"); do
        if [ "$admitting" = "$service" ]; then
          printf '\n# account %s (role %s)\n' "$(basename "$entry" .toml)" "$role"
          grep -v '^#' "$entry"
        fi
      done
    done
  } | write "$dir/$service/api-keys.toml" 644
done

# A starter policy for the gateway, only when there is none: it is the operator's file.
# The gateway replicas' shared key for sealed MCP session ids (MCP_SERVER_SESSION_KEY_FILE): 32
# random bytes, made once and kept (a new key ends every open session; rotate by hand, see
# deploy/README.md, "MCP sessions and replicas").
if [ ! -s "$dir/mcp-server/session-key" ]; then
  mkdir -p "$dir/mcp-server"
  head -c 32 /dev/urandom >"$dir/mcp-server/session-key.tmp"
  chmod 644 "$dir/mcp-server/session-key.tmp"
  mv "$dir/mcp-server/session-key.tmp" "$dir/mcp-server/session-key"
  say "gateway session key (shared by its replicas): $dir/mcp-server/session-key"
fi
if [ ! -f "$dir/mcp-server/policy.toml" ]; then
  write "$dir/mcp-server/policy.toml" 644 <<'EOF'
# The gateway's access policy (MCP_SERVER_POLICY): who may call which tools. Written once by
# deploy/make-secrets.sh and never overwritten: edit it. The gateway rereads it within a second
# of a change; a broken edit keeps the previous policy (and says so in its log). Whatever no
# grant gives is denied, and tools/list shows each caller only what it may call.
# Reference: docs/configuration.md, [mcp-server] `policy`.
#
# Callers are API key names and their groups (deploy/make-secrets.sh --add-user NAME --groups
# a,b), or a JWT's sub / groups / roles / scopes. The middleware calls the gateway on behalf of
# the person chatting (MCP_SERVER_DELEGATES=middleware), so these grants judge that person.

[roles.time]
upstreams = ["time-client"]

[roles.code]
# Programs, and the code interpreter: sessions that keep their state, files in and out.
tools = ["execute_code", "create_session", "close_session", "upload_file", "list_files", "download_file"]
# Longest run a user may ask for (the sandbox's own maximum still applies).
execute_code = { max_timeout_seconds = 60 }

[roles.packages]
tools = ["install_package"]
# Which packages (PEP 503 names, globs) may be requested; held and blocked lists still apply.
install_package = ["*"]

# At most 2 executions a second per caller (bursts of 5), 2 at once.
[limits."execute_code"]
rate_per_second = 2
burst = 5
max_in_flight = 2

[[grants]]
roles = ["time", "code"]
groups = ["users"]

[[grants]]
roles = ["time", "code", "packages"]
groups = ["operators"]
EOF
  say "starter policy: $dir/mcp-server/policy.toml"
fi

say "secrets in $dir"
