#!/bin/sh
# Install what p2pcat needs: `deps.sh build' for building, `deps.sh test'
# for building and the test suite.  As root it runs apt-get; otherwise it
# prints the exact command and fails.
#
# Each need is PACKAGE or PACKAGE:COMMAND; with a COMMAND, that command on
# the PATH is enough, whoever packaged it (NodeSource's nodejs, say, brings
# its own npm and conflicts with Debian's).
set -u
BUILD="gcc:gcc make:make pkg-config:pkg-config libcurl4-openssl-dev libcjson-dev libsodium-dev
	libssl-dev libprotobuf-c-dev protobuf-c-compiler:protoc-c
	zlib1g-dev"
TEST="$BUILD coturn:turnserver iproute2:ip iptables:iptables conntrack:conntrack
	python3:python3 mandoc:mandoc bsdextrautils:col nodejs:node npm:npm netcat-openbsd
	iperf3:iperf3 procps:pgrep time:/usr/bin/time
	openssh-server:/usr/sbin/sshd openssh-client:ssh curl:curl
	clang:clang libclang-rt-dev valgrind:valgrind"

case "${1:-build}" in
build) want=$BUILD ;;
test)  want=$TEST ;;
*) echo "usage: deps.sh build|test" >&2; exit 1 ;;
esac

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=
for need in $want; do
	pkg=${need%%:*}
	cmd=
	case $need in *:*) cmd=${need#*:} ;; esac
	if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then
		continue
	fi
	installed "$pkg" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: not a Debian system; install the equivalents of:$missing" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "p2pcat: missing packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# The tests start their own servers (sshd among them): packages must not
# start system services while they install, as Debian's policy-rc.d
# convention allows.  The file goes however deps.sh ends, interrupted
# too: left behind, it would keep every service of later installs down.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy=/usr/sbin/policy-rc.d
	trap 'rm -f "$policy"' EXIT
	trap 'exit 1' HUP INT TERM
	printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
fi
apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends $missing >&2
