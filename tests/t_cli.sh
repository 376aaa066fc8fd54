#!/bin/sh
# The command-line contract: help, version, misuse, config precedence.
. "$(dirname "$0")/lib.sh"

# expect STATUS CMD...: run CMD, check its exit status; keeps stdout/stderr.
expect() {
	_want=$1; shift
	"$@" > "$T/out" 2> "$T/err"
	_rc=$?
	[ $_rc -eq "$_want" ] || fail "$*: exit $_rc, want $_want (stderr: $(cat "$T/err"))"
}

expect 0 "$P2PCAT" -h
grep -q '^usage: p2pcat' "$T/out" || fail "-h: no usage on stdout"
[ -s "$T/err" ] && fail "-h: wrote to stderr"

expect 0 "$P2PCAT" --version
grep -Eq '^p2pcat [0-9]+\.[0-9]+' "$T/out" || fail "--version: got $(cat "$T/out")"

# Misuse: exit 1, usage or a message on stderr, nothing on stdout.
for args in "--bogus" "-x" "" "a b" "-l a b" "-w" "-w abc x" "-w -1 x" "-w 1e9 x" \
    "-p 70000 x" "-p -1 x" "--idle 0 x" "-k x" "--poll 1 x" "--send-only --recv-only x" \
    "bad/name" ".hidden" "-S nosuchscheme:x x" "-S noscheme x" \
    "$(printf 'n%.0s' $(seq 1 65))"; do
	# shellcheck disable=SC2086
	expect 1 "$P2PCAT" $args
	[ -s "$T/out" ] && fail "p2pcat $args: wrote to stdout"
	[ -s "$T/err" ] || fail "p2pcat $args: no diagnostic on stderr"
done
grep -q "bad wait \`abc'" "$T/err" 2>/dev/null || true
expect 1 "$P2PCAT" -w abc x
grep -q "bad wait \`abc'" "$T/err" || fail "-w abc: message does not quote the input: $(cat "$T/err")"

# -l without a name and no default.
expect 1 "$P2PCAT" -l
grep -q "no name to listen as" "$T/err" || fail "-l: $(cat "$T/err")"

# Config file: an unknown key is an error naming the file and line.
mkdir -p "$XDG_CONFIG_HOME/p2pcat"
printf '# comment\nbogus = 1\n' > "$XDG_CONFIG_HOME/p2pcat/config"
expect 1 "$P2PCAT" -w 0.2 somebody
grep -q "unknown setting \`bogus'" "$T/err" || fail "unknown key: $(cat "$T/err")"
grep -q "config:2" "$T/err" || fail "unknown key: no file:line in $(cat "$T/err")"
printf 'wait = forever\n' > "$XDG_CONFIG_HOME/p2pcat/config"
expect 1 "$P2PCAT" somebody

# Precedence: command line beats environment beats file.  The rendezvous
# directory that gets created shows which setting won; with nobody
# listening the caller gives up after -w with status 2.
printf 'signal = dir:%s\nwait = 0.3\n' "$T/from-file" > "$XDG_CONFIG_HOME/p2pcat/config"
expect 2 "$P2PCAT" somebody
[ -d "$T/from-file" ] || fail "config signal not used"
grep -q "no answer from \`somebody' within 0.3 s" "$T/err" || fail "config wait not used: $(cat "$T/err")"
P2PCAT_SIGNAL="dir:$T/from-env" expect 2 "$P2PCAT" somebody
[ -d "$T/from-env" ] || fail "P2PCAT_SIGNAL does not beat the config"
P2PCAT_SIGNAL="dir:$T/from-env2" expect 2 "$P2PCAT" -S "dir:$T/from-cli" -w 0.2 somebody
[ -d "$T/from-cli" ] || fail "-S does not beat P2PCAT_SIGNAL"
[ -d "$T/from-env2" ] && fail "P2PCAT_SIGNAL used despite -S"
grep -q "within 0.2 s" "$T/err" || fail "-w does not beat the config: $(cat "$T/err")"

# A listener's default name: P2PCAT_NAME beats the config's name.
printf 'name = fromfile\nsignal = dir:%s\n' "$T/rv" > "$XDG_CONFIG_HOME/p2pcat/config"
P2PCAT_NAME=fromenv "$P2PCAT" -l -v < /dev/null > /dev/null 2> "$T/lerr" & lp=$!
wait_for 5 grep -q "listening as \`fromenv'" "$T/lerr" || fail "P2PCAT_NAME not used: $(cat "$T/lerr")"
kill $lp; wait $lp
rc=$?
check_eq "listener's status after SIGTERM" $rc 143
# The shipped sample config parses.  Checked with a listener that has no
# name, which stops after reading the config, before any network use
# (the sample names public STUN servers that a test must never contact).
cp "$SRCDIR/p2pcat.conf.example" "$XDG_CONFIG_HOME/p2pcat/config"
unset P2PCAT_NAME
expect 1 "$P2PCAT" -l
grep -q "no name to listen as" "$T/err" || fail "sample config: $(cat "$T/err")"
echo "cli: ok"
