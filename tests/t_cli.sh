#!/bin/sh
# The command-line contract: help, version, misuse and its messages,
# servers checked at startup, the TURN password kept out of ps, the
# configuration file (comments, keys given twice, precedence).
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

# -h: the synopsis, then a line for each option.
for opt in $(grep -o '{ "[a-z-]*",[[:space:]]*[a-z_]*argument' "$SRCDIR/opts.c" | cut -d'"' -f2); do
	sed '1,/^$/d' "$T/out" | grep -Eq "^  (-[a-zA-Z], |    )--$opt( |$)" ||
		fail "-h does not describe --$opt"
done

expect 0 "$P2PCAT" --version
grep -Eq '^p2pcat [0-9]+\.[0-9]+' "$T/out" || fail "--version: got $(cat "$T/out")"

# What -h, --version and --id print is all they do: an output that
# cannot take it (a full disk) is an error, not status 0 and a file
# that silently lacks the key.
for args in -h --version --id; do
	"$P2PCAT" $args > /dev/full 2> "$T/err"
	rc=$?
	[ $rc -eq 1 ] || fail "p2pcat $args > /dev/full: exit $rc, want 1 (stderr: $(cat "$T/err"))"
	grep -q "^p2pcat: cannot write to stdout: No space left on device$" "$T/err" ||
		fail "p2pcat $args > /dev/full: $(cat "$T/err")"
done

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
expect 1 "$P2PCAT" -w abc x
grep -q "bad wait \`abc'" "$T/err" || fail "-w abc: message does not quote the input: $(cat "$T/err")"

# getopt's complaints are ours: one line, starting with `p2pcat: '.
# one_line WHAT WANT: $T/err is the single line `p2pcat: WANT'.
one_line() { check_eq "$1" "$(cat "$T/err")" "p2pcat: $2"; }
expect 1 "$P2PCAT" --bogus x
one_line "--bogus" "unknown option \`--bogus' (p2pcat -h lists them)"
expect 1 "$P2PCAT" -x y
one_line "-x" "unknown option \`-x' (p2pcat -h lists them)"
expect 1 "$P2PCAT" x -w
one_line "-w last" "option \`-w' needs a value"
expect 1 "$P2PCAT" x --idle
one_line "--idle last" "option \`--idle' needs a value"
expect 1 "$P2PCAT" --recv-only=yes x
one_line "--recv-only=yes" "option \`--recv-only' takes no value"
expect 1 "$P2PCAT" --se x
one_line "--se" "ambiguous option \`--se' (p2pcat -h lists them)"
# nc's habit of a host and a port: said why.
expect 1 "$P2PCAT" bob 1234
one_line "bob 1234" "one name, not \`bob 1234': a peer is called by its name alone, with no port (-p sets our own UDP port)"

# STUN and TURN servers are checked before any wait, by callers and
# listeners alike (names that fail without a DNS query: no traffic).
for args in "--stun no..such.host x" "--stun 127.0.0.1:99999 x" "--stun 127.0.0.1:0 x" \
    "--stun [::1 x" "--stun :3478 x" "--turn turn://u:p@:3478 x" "--turn u@h x" \
    "-l --stun no..such.host bob" "-l --turn turn://u:p@no..such:3478 bob"; do
	# shellcheck disable=SC2086
	expect 1 timeout 5 "$P2PCAT" -w 20 $args
	grep -Eq "^p2pcat: (bad|cannot resolve) (STUN|TURN) (server|URL)" "$T/err" ||
		fail "p2pcat $args: $(cat "$T/err")"
done
P2PCAT_TURN=turn://u:p@no..such expect 1 timeout 5 "$P2PCAT" -w 20 x
grep -q "cannot resolve TURN server \`no..such'" "$T/err" || fail "P2PCAT_TURN: $(cat "$T/err")"

# --turn on the command line: warned of, and the password gone from
# what ps shows while p2pcat runs.  --turn-file keeps it out of argv.
"$P2PCAT" -w 5 -S "dir:$T/trv" --turn turn://user:SeCrEt@127.0.0.1:9 x > /dev/null 2> "$T/err" & cp=$!
wait_for 5 grep -q "^p2pcat: warning: --turn shows the TURN password" "$T/err" ||
	fail "no warning for --turn: $(cat "$T/err")"
wait_for 5 test -d "$T/trv" || fail "the caller with --turn did not start"
tr '\0' ' ' < "/proc/$cp/cmdline" | grep -q SeCrEt && fail "ps shows the TURN password"
tr '\0' ' ' < "/proc/$cp/cmdline" | grep -q "turn://user:xxxxxx@127.0.0.1:9" ||
	fail "argv: $(tr '\0' ' ' < "/proc/$cp/cmdline")"
kill $cp; wait $cp
printf 'turn://user:SeCrEt@127.0.0.1:9\n' > "$T/turn"
chmod 644 "$T/turn"
expect 1 "$P2PCAT" -w 0.2 --turn-file "$T/turn" x
grep -q "TURN file \`$T/turn' must be a regular file that only you can read" "$T/err" ||
	fail "--turn-file 644: $(cat "$T/err")"
chmod 600 "$T/turn"
expect 2 "$P2PCAT" -w 0.2 -S "dir:$T/trv" --turn-file "$T/turn" x
grep -q "warning" "$T/err" && fail "--turn-file warned: $(cat "$T/err")"
grep -q "SeCrEt" "$T/err" && fail "the TURN password printed"
expect 1 "$P2PCAT" -w 0.2 --turn-file "$T/turn" --turn turn://u:p@h x
grep -q -- "--turn and --turn-file exclude each other" "$T/err" || fail "$(cat "$T/err")"

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
# A key given twice is an error, naming both lines.
printf 'name = a\nwait = 1\nname = b\n' > "$XDG_CONFIG_HOME/p2pcat/config"
expect 1 "$P2PCAT" somebody
grep -q "config:3: \`name' was given already, on line 1" "$T/err" || fail "twice: $(cat "$T/err")"
printf 'stun = no..such.host\n' > "$XDG_CONFIG_HOME/p2pcat/config"
expect 1 timeout 5 "$P2PCAT" -w 20 somebody
grep -q "cannot resolve STUN server \`no..such.host'" "$T/err" || fail "config stun: $(cat "$T/err")"
# A directory where the file should be: an error, status 1.
rm "$XDG_CONFIG_HOME/p2pcat/config"
mkdir "$XDG_CONFIG_HOME/p2pcat/config"
expect 1 "$P2PCAT" -w 0.2 somebody
grep -q "is a directory" "$T/err" || fail "config directory: $(cat "$T/err")"
rmdir "$XDG_CONFIG_HOME/p2pcat/config"

# --max-conns with a port of our own, given or from the config: refused,
# since one port is one socket, which serves one session at a time
# (before, the listener started and served one, --max-conns unheeded).
expect 1 timeout -k 1 10 "$P2PCAT" -l --allow-any -c cat --max-conns 4 -p 40000 somebody
one_line "--max-conns with -p" "--max-conns cannot go with -p: one port is one socket, which serves one session at a time"
printf 'port = 40000\n' > "$XDG_CONFIG_HOME/p2pcat/config"
expect 1 timeout -k 1 10 "$P2PCAT" -l --allow-any -c cat --max-conns 4 somebody
one_line "--max-conns with the config's port" "--max-conns cannot go with the port setting of the config: one port is one socket, which serves one session at a time"
rm "$XDG_CONFIG_HOME/p2pcat/config"

# A port already taken is an error at once, before any rendezvous: the
# same status (1) and message for a listener and for a caller.
python3 -c 'import signal, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
signal.pause()' > "$T/taken" & hp=$!
at_exit "kill $hp 2>/dev/null"
wait_for 10 test -s "$T/taken" || fail "no UDP port held for the test"
taken=$(cat "$T/taken")
expect 1 timeout -k 1 10 "$P2PCAT" -l -p "$taken" somebody
one_line "a listener on a taken port" "cannot bind UDP port $taken: Address already in use"
expect 1 timeout -k 1 10 "$P2PCAT" -w 5 -p "$taken" somebody
one_line "a caller on a taken port" "cannot bind UDP port $taken: Address already in use"
kill $hp

# Precedence: command line beats environment beats file.  The rendezvous
# directory that gets created shows which setting won; with nobody
# listening the caller gives up after -w with status 2.
printf 'signal = dir:%s  # a comment\nwait = 0.3\t# too\n' "$T/from-file" > "$XDG_CONFIG_HOME/p2pcat/config"
expect 2 "$P2PCAT" somebody
[ -d "$T/from-file" ] || fail "config signal not used"
grep -q "no answer from \`somebody' within 0.3 s" "$T/err" || fail "config wait not used: $(cat "$T/err")"
P2PCAT_SIGNAL="dir:$T/from-env" expect 2 "$P2PCAT" somebody
[ -d "$T/from-env" ] || fail "P2PCAT_SIGNAL does not beat the config"
P2PCAT_SIGNAL="dir:$T/from-env2" expect 2 "$P2PCAT" -S "dir:$T/from-cli" -w 0.2 somebody
[ -d "$T/from-cli" ] || fail "-S does not beat P2PCAT_SIGNAL"
[ -d "$T/from-env2" ] && fail "P2PCAT_SIGNAL used despite -S"
grep -q "within 0.2 s" "$T/err" || fail "-w does not beat the config: $(cat "$T/err")"

# -v counts the rendezvous' reads and writes, in English: one offer is
# "1 write".
expect 2 "$P2PCAT" -v -w 0.2 -S "dir:$T/counts" somebody
grep -Eq "^p2pcat: rendezvous: [0-9]+ reads?, 1 write in all$" "$T/err" || fail "counts: $(cat "$T/err")"

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
