#!/bin/sh
# make demo: p2pcat's main job end to end on the embedded default
# rendezvous (a local directory): a listener and a caller as two processes,
# a message and then a 64 MiB random file, checksums compared.
set -u
cd "$(dirname "$0")/.." || exit 1
P2PCAT=./p2pcat
T=$(mktemp -d "${TMPDIR:-/tmp}/p2pcat-demo.XXXXXX")
trap 'kill $lpid 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
lpid=
# A private rendezvous directory, so the demo meets nobody else, and a
# scratch HOME, so that the keys it makes and the peer it trusts stay out
# of the user's ~/.config/p2pcat; nothing of the user's settings either.
export P2PCAT_SIGNAL="dir:$T/rendezvous"
export HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" XDG_CACHE_HOME="$T/home/.cache"
unset P2PCAT_NAME P2PCAT_SECRET P2PCAT_TURN P2PCAT_CIPHER P2PCAT_API_KEY
mkdir -p "$HOME"

say() { printf '== %s\n' "$*"; }

echo "(in a scratch HOME, $HOME: your own ~/.config/p2pcat is not touched)"
say "1. a message"
$P2PCAT -l demo < /dev/null > "$T/msg.out" & lpid=$!
echo "hello from the caller, $(date -u)" | $P2PCAT demo || { echo "demo: caller failed" >&2; exit 1; }
wait $lpid || { echo "demo: listener failed" >&2; exit 1; }
printf 'listener printed: %s\n' "$(cat "$T/msg.out")"

say "2. a 64 MiB random file"
head -c 67108864 /dev/urandom > "$T/file"
$P2PCAT -l --recv-only demo > "$T/file.out" & lpid=$!
start=$(date +%s.%N)
$P2PCAT --send-only demo < "$T/file" || { echo "demo: caller failed" >&2; exit 1; }
wait $lpid || { echo "demo: listener failed" >&2; exit 1; }
end=$(date +%s.%N)
sent=$(sha256sum < "$T/file" | cut -d' ' -f1)
got=$(sha256sum < "$T/file.out" | cut -d' ' -f1)
echo "sent     sha256 $sent"
echo "received sha256 $got"
awk -v s="$start" -v e="$end" 'BEGIN { printf "64 MiB in %.2f s (%.0f MB/s)\n", e - s, 67.108864 / (e - s) }'
if [ "$sent" = "$got" ]; then
	echo "demo: OK, checksums match"
else
	echo "demo: FAILED, checksums differ" >&2
	exit 1
fi
