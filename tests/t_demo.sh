#!/bin/sh
# make demo (tests/demo.sh) works, and leaves the user's own
# ~/.config/p2pcat alone: no key made there, no peer trusted.
. "$(dirname "$0")/lib.sh"
sh "$SRCDIR/tests/demo.sh" > "$T/out" 2>&1 || fail "demo failed: $(tail -5 "$T/out")"
grep -q "demo: OK, checksums match" "$T/out" || fail "demo: $(tail -5 "$T/out")"
[ -e "$XDG_CONFIG_HOME/p2pcat" ] && fail "the demo wrote into the user's config: $(ls -R "$XDG_CONFIG_HOME/p2pcat")"
[ -e "$HOME/.config/p2pcat" ] && fail "the demo wrote into ~/.config/p2pcat"
find "$HOME" -mindepth 1 | grep -q . && fail "the demo left files in HOME: $(find "$HOME" -mindepth 1)"
echo "demo: ok, nothing of the user's touched"
