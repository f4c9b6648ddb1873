# Hosts for the multi-host tests: Linux network namespaces on this machine, each with its own
# address, cabled by veth links to one virtual switch (a bridge in a namespace of its own).
# Nothing of the machine's own network is touched. Sourced by scripts/multihost-*.sh, which set
#   RUN   a prefix for this run's namespace names      NET  the switch's /24 ("10.213.0")
# and delete every namespace in NAMESPACES when they end.

declare -a NAMESPACES=()
declare -A ADDR=()
SW=$RUN-switch

# make_switch: the switch's namespace with bridge br0.
make_switch() {
  ip netns add "$SW"
  NAMESPACES+=("$SW")
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
}

# add_host NAME N: a namespace $RUN-NAME whose eth0 is $NET.N/24, cabled to switch port NAME.
add_host() {
  local name=$1 ns=$RUN-$1 addr=$NET.$2
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  ip -n "$SW" link add "$name" type veth peer name eth0 netns "$ns"
  ip -n "$SW" link set "$name" master br0
  ip -n "$SW" link set "$name" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ADDR[$name]=$addr
}

# on HOST COMMAND...: run COMMAND on HOST.
on() {
  local host=$1
  shift
  ip netns exec "$RUN-$host" "$@"
}
