#!/bin/sh
# Bad input, as a table: every option's bad values; unreadable,
# malformed, directory or huge files (config, key, secret, TURN,
# known_peers, --allow); names that are empty, 5,000 bytes long, or hold
# `/', `..', blanks, newlines or control characters; HOME unset; a
# missing or unwritable XDG_RUNTIME_DIR.  Each is refused at once: status
# 1, nothing on stdout, one line on stderr that starts `p2pcat: ' (or
# the usage message), within seconds; no crash, no wait.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
CFG=$XDG_CONFIG_HOME/p2pcat
# The key exists before the table, so that no row says it made one.
"$P2PCAT" --id > /dev/null 2>&1 || fail "--id"
# Root reads and writes whatever the modes say: as root, the rows about
# an unreadable file or an unwritable directory run as nobody (65534),
# with a HOME, key and rendezvous of its own that it owns; RUNAS is then
# put before each command of theirs.  OWNCFG and OWNDIR are a config
# directory and a scratch directory of whoever runs those rows.
RUNAS=
NOBODY=
OWNCFG=$CFG
OWNDIR=$T
if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null || skip "no setpriv (util-linux), for the rows run as nobody"
	NB=$(mktemp -d "${TMPDIR:-/tmp}/p2pcat-nb.XXXXXX")
	at_exit "rm -rf '$NB'"
	chown 65534:65534 "$NB"
	NOBODY=as_nobody
	OWNCFG=$NB/home/.config/p2pcat
	OWNDIR=$NB
fi
# as_nobody CMD...: CMD as uid and gid 65534, no groups, in $NB.
as_nobody() {
	setpriv --reuid 65534 --regid 65534 --clear-groups env \
	    HOME="$NB/home" XDG_CONFIG_HOME="$NB/home/.config" \
	    XDG_CACHE_HOME="$NB/home/.cache" XDG_RUNTIME_DIR="$NB/run" \
	    P2PCAT_SIGNAL="dir:$NB/rv" "$@"
}
if [ -n "$NOBODY" ]; then
	as_nobody sh -c 'mkdir -p "$HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"' ||
	    fail "nobody's HOME in $NB"
	as_nobody "$P2PCAT" --id > /dev/null 2>&1 || fail "--id as nobody"
fi

NL='
'
ESC=$(printf '\033')
BEL=$(printf '\007')
LONG=$(head -c 5000 /dev/zero | tr '\0' n)
printf 'x%.0s' $(seq 1 70000) > "$T/huge"
mkdir "$T/dir"
printf 'not a key, not a line of anything\n' > "$T/garbage"
printf 'ok\n' > "$T/public"
chmod 644 "$T/public"
printf 'passphrase\n' > "$T/private"
chmod 600 "$T/private"
: > "$T/empty"
chmod 600 "$T/empty" "$T/huge"
head -c 2000 /dev/zero | tr '\0' s > "$T/longsecret"
chmod 600 "$T/longsecret"
printf 'turn://u:p@no..such.host:3478\n' > "$T/turnbad"
chmod 600 "$T/turnbad"
printf 'x' > "$T/file"

rows=0 bad=0
# row WHAT [VAR=VALUE...] -- ARGS...: one row of the table.
row() {
	_what=$1; shift
	# "$@" is ENV... -- ARGS...: rotated into ENV... timeout ... ARGS...
	# (no arrays in sh), so that values keep their blanks.
	_i=0
	while [ "$1" != "--" ]; do set -- "$@" "$1"; shift; _i=$((_i + 1)); done
	shift
	_k=$(($# - _i))
	set -- "$@" timeout -k 1 8 "$P2PCAT"
	while [ $_k -gt 0 ]; do set -- "$@" "$1"; shift; _k=$((_k - 1)); done
	rows=$((rows + 1))
	$RUNAS env "$@" < /dev/null > "$T/out" 2> "$T/err"
	_rc=$? _why=
	_first=$(head -n 1 "$T/err")
	if [ $_rc -ne 1 ]; then
		_why="status $_rc"
	elif [ -s "$T/out" ]; then
		_why="wrote to stdout"
	elif [ "${_first#usage: p2pcat}" != "$_first" ]; then
		:
	elif [ "${_first#p2pcat: }" = "$_first" ] || [ "$(wc -l < "$T/err")" -ne 1 ]; then
		_why="stderr is not one \`p2pcat: ' line"
	fi
	if [ -n "$_why" ]; then
		echo "FAIL: $_what: $_why: $(head -c 300 "$T/err")"
		bad=$((bad + 1))
	else
		echo "ok: $_what: $_first"
	fi
}
# conf TEXT: the configuration file holds TEXT.
conf() { printf '%s' "$1" > "$CFG/config"; }
noconf() { rm -rf "$CFG/config"; }

# --- every option's bad values ----------------------------------------
for v in "" abc -1 0 0.01 1e9 nan inf 0x10 " 5" "1 2" 1s; do
	row "-w \`$v'" -- -w "$v" x
done
for v in "" 0 0.5 86401 abc -3; do
	row "--idle \`$v'" -- --idle "$v" x
done
for v in "" 0 3601 abc; do
	row "--poll \`$v'" -- -l --poll "$v" bob
done
for v in "" -1 65536 99999 abc 1.5 " 80"; do
	row "-p \`$v'" -- -p "$v" x
done
for v in "" 0 1025 abc -1; do
	row "--max-conns \`$v'" -- -l --allow-any -c cat --max-conns "$v" bob
done
for v in "" nosuchscheme:x noscheme firestore: "firestore:a/b/c" "dir:$T/file/x"; do
	row "-S \`$v'" -- -S "$v" -w 5 x
done
for v in "" :1 h:0 h:65536 h:x "[::1" "::1:3478" no..such.host "a b:1" 127.0.0.1:-1; do
	row "--stun \`$v'" -- --stun "$v" -w 5 x
done
row "five --stun" -- --stun a:1 --stun a:2 --stun a:3 --stun a:4 --stun a:5 x
for v in "" turn:// turn://u@h turn://:p@h turn://u:p@ turn://u:p@h:99999 turn://u:p@no..such; do
	row "--turn \`$v'" -- --turn "$v" -w 5 x
done
for v in "" abc "SHA256:short" "$LONG"; do
	row "--peer-key \`$(printf '%s' "$v" | head -c 12)'" -- --peer-key "$v" x
done
row "-e and -c" -- -e cat -c cat x
row "-e \`'" -- -e "" x
row "-e no such program" -- -e /nonexistent/prog x
row "-c with --send-only" -- -c cat --send-only x
row "--send-only --recv-only" -- --send-only --recv-only x
row "-k without -l" -- -k x
row "--allow without -l" -- --allow "$T/file" x
row "--allow and --allow-any" -- -l -c cat --allow "$T/file" --allow-any bob
row "a command for anyone" -- -l -c cat bob
row "--id with a name" -- --id x
row "unknown option" -- --bogus x
row "ambiguous option" -- --s x
row "missing value" -- x -w
row "a value for a flag" -- --udp=1 x
row "no peer" --
row "two names" -- bob 1234
row "P2PCAT_CIPHER" P2PCAT_CIPHER=blowfish -- x
row "P2PCAT_TURN" P2PCAT_TURN=turn://u@h -- x
row "P2PCAT_SECRET too long" "P2PCAT_SECRET=$(head -c 1100 /dev/zero | tr '\0' s)" -- x

# --- files: secret, TURN, key, config ----------------------------------
for f in /nonexistent "$T/dir" "$T/public" "$T/empty" "$T/longsecret" "$T/huge"; do
	row "--secret-file ${f#"$T"/}" -- --secret-file "$f" x
	row "--turn-file ${f#"$T"/}" -- --turn-file "$f" x
done
row "--turn-file with a bad URL" -- --turn-file "$T/turnbad" x
row "--turn and --turn-file" -- --turn turn://u:p@h --turn-file "$T/private" x

KEY=$CFG/key
cp -p "$KEY" "$T/key.saved"
printf 'garbage\n' > "$KEY"
row "a malformed key" -- -w 5 x
cp "$T/huge" "$KEY"
row "a huge key" -- -w 5 x
chmod 644 "$KEY"
cp -p "$T/key.saved" "$KEY"
chmod 644 "$KEY"
row "a key others can read" -- -w 5 x
rm "$KEY"
mkdir "$KEY"
row "a directory as the key" -- -w 5 x
rmdir "$KEY"
ln -s "$T/key.saved" "$KEY"
row "a symbolic link as the key" -- -w 5 x
rm "$KEY"
cp -p "$T/key.saved" "$KEY"

conf 'nonsense line'
row "config: no \`='" -- -w 5 x
conf 'bogus = 1'
row "config: unknown key" -- -w 5 x
conf "$(printf 'name = a\nname = b\n')"
row "config: a key twice" -- -w 5 x
for kv in "wait = x" "idle = 0" "poll = -1" "port = 99999" "stun = no..such.host" \
    "stun = h:0" "turn = turn://u@h" "turn-file = /nonexistent" "signal = nosuch:" \
    "name = a/b"; do
	conf "$kv"
	row "config: \`$kv'" -u P2PCAT_SIGNAL -- -w 5 x
done
conf "$(printf 'turn = turn://u:p@h\nturn-file = %s\n' "$T/private")"
row "config: turn and turn-file" -- -w 5 x
printf 'name = a\0b\n' > "$CFG/config"
row "config: a NUL byte" -- -w 5 x
cp "$T/huge" "$CFG/config"
row "config: huge" -- -w 5 x
noconf
mkdir "$CFG/config"
row "config: a directory" -- -w 5 x
noconf
mkfifo "$CFG/config"
row "config: a FIFO" -- -w 5 x
noconf
# Readable, this config lets the call go on (it would wait 5 s).
RUNAS=$NOBODY
$RUNAS sh -c 'printf "wait = 1" > "$1" && chmod 000 "$1"' sh "$OWNCFG/config" ||
	fail "an unreadable config"
row "config: unreadable" -- -w 5 x
grep -q "configuration file .*: Permission denied" "$T/err" ||
	fail "config: unreadable: refused for another reason: $(cat "$T/err")"
RUNAS=
rm -f "$OWNCFG/config"

# --- known_peers and --allow: read when a peer arrives today -----------
KP=$CFG/known_peers
printf 'bob notakey\n' > "$KP"
row "known_peers: malformed" -- -w 0.3 bob
rm "$KP"; mkdir "$KP"
row "known_peers: a directory" -- -w 0.3 bob
rmdir "$KP"; cp "$T/huge" "$KP"
row "known_peers: huge" -- -w 0.3 bob
rm "$KP"
row "--allow: missing" -- -l -w 0.3 --allow /nonexistent bob
row "--allow: a directory" -- -l -w 0.3 --allow "$T/dir" bob
row "--allow: malformed" -- -l -w 0.3 --allow "$T/garbage" bob
row "--allow: huge" -- -l -w 0.3 --allow "$T/huge" bob

# --- names --------------------------------------------------------------
for n in "" "$LONG" a/b .. ../x "a b" "a${NL}b" "a${ESC}[2Jb" "a${BEL}" .hidden "$(printf 'caf\303\251')"; do
	_shown=$(printf '%s' "$n" | head -c 12 | tr -c 'A-Za-z0-9./ -' '?')
	row "peer name \`$_shown'" -- -w 5 "$n"
	row "listener name \`$_shown'" -- -l -w 5 "$n"
	row "P2PCAT_NAME \`$_shown'" "P2PCAT_NAME=$n" -- -l -w 5
done

# --- the environment ---------------------------------------------------
row "HOME and XDG_CONFIG_HOME unset" -u HOME -u XDG_CONFIG_HOME -- -w 5 x
row "HOME relative, XDG_CONFIG_HOME unset" -u XDG_CONFIG_HOME HOME=relative -- -w 5 x
row "XDG_RUNTIME_DIR a file" -u P2PCAT_SIGNAL "XDG_RUNTIME_DIR=$T/file" -- -w 5 x
row "XDG_RUNTIME_DIR inside a file" -u P2PCAT_SIGNAL "XDG_RUNTIME_DIR=$T/file/x" -- -w 5 x
row "XDG_RUNTIME_DIR missing" -u P2PCAT_SIGNAL "XDG_RUNTIME_DIR=$T/missing/run" -- -w 0.3 x
# Writable, this directory lets the call go on (it would wait 5 s).
RO=$OWNDIR/ro
$NOBODY sh -c 'mkdir "$1" && chmod 500 "$1"' sh "$RO" || fail "an unwritable $RO"
RUNAS=$NOBODY
row "XDG_RUNTIME_DIR unwritable" -u P2PCAT_SIGNAL "XDG_RUNTIME_DIR=$RO" -- -w 5 x
grep -q "rendezvous directory .*: Permission denied" "$T/err" ||
	fail "XDG_RUNTIME_DIR unwritable: refused for another reason: $(cat "$T/err")"
RUNAS=

echo "$rows rows: $((rows - bad)) refused as they should be, $bad failures"
[ $bad -eq 0 ] || fail "$bad rows"
echo "badinput: ok"
