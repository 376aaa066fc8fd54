#!/bin/sh
# The man page is clean mdoc and its SYNOPSIS is what usage() prints.
. "$(dirname "$0")/lib.sh"
command -v mandoc >/dev/null || skip "mandoc is not installed"
command -v col >/dev/null || skip "col is not installed (bsdextrautils)"
page=$SRCDIR/man/p2pcat.1

# mandoc's notes about this machine's man index, and about pages of SEE
# ALSO that this machine lacks (socat(1) need not be installed), are
# about the machine, not the page.
mandoc -Tlint "$page" 2>&1 | grep -v 'mandoc.db\|referenced manual not found' > "$T/lint"
[ -s "$T/lint" ] && fail "mandoc -Tlint: $(cat "$T/lint")"

for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT FILES "EXIT STATUS" EXAMPLES "SEE ALSO" CAVEATS; do
	grep -q "^\.Sh $s\$" "$page" || fail "man page lacks $s"
done

# SYNOPSIS as rendered, against usage(), both with white space folded.
MANWIDTH=200 mandoc -Tascii "$page" | col -b |
	awk '/^SYNOPSIS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' |
	tr -s '[:space:]' ' ' | sed 's/^ //; s/ $//' > "$T/man"
# -h: the synopsis, then (after a blank line) a line for each option.
"$P2PCAT" -h | sed '/^$/q' | sed 's/^usage: //; s/^       //' | tr -s '[:space:]' ' ' | sed 's/^ //; s/ $//' > "$T/usage"
cmp -s "$T/man" "$T/usage" || fail "SYNOPSIS and usage() differ:
man:   $(cat "$T/man")
usage: $(cat "$T/usage")"

# Every exit status the code defines is documented.
for code in 0 1 2 3 4 129 130 131 143; do
	awk '/^\.Sh EXIT STATUS/ { on = 1 } /^\.Sh EXAMPLES/ { on = 0 } on' "$page" |
		grep -Eq "^\.It ([0-9]+, )*$code(,|\$)" || fail "exit status $code undocumented"
done
# Every long option in the code is in the man page.
[ "$(grep -c '{ "[a-z-]*",[[:space:]]*[a-z_]*argument' "$SRCDIR/opts.c")" -gt 20 ] ||
	fail "the long options are no longer where this test looks"
for opt in $(grep -o '{ "[a-z-]*",[[:space:]]*[a-z_]*argument' "$SRCDIR/opts.c" | cut -d'"' -f2); do
	grep -q -- "Fl \\\\-$opt\|Fl .*, Fl \\\\-$opt\|\\\\-$opt" "$page" || fail "--$opt undocumented"
done
# A default the man page gives for an option, -h gives too, the same.
MANWIDTH=200 mandoc -Tascii "$page" | col -b |
	awk '/^     -/ { opt = $0; sub(/^ +/, "", opt); sub(/ .*/, "", opt); sub(/,$/, "", opt); next }
	    /^[A-Z]/ { opt = "" }
	    opt != "" && match($0, /\(default [0-9.]+\)/) { print opt, substr($0, RSTART, RLENGTH) }' > "$T/defaults"
[ "$(wc -l < "$T/defaults")" -ge 3 ] || fail "the man page's defaults are no longer where this test looks"
"$P2PCAT" -h > "$T/help"
while read -r opt def; do
	grep -E -- "^ +(-[a-zA-Z], )?$opt[ ,]" "$T/help" | grep -qF -- "$def" ||
		fail "-h does not say $opt's $def: $(grep -E -- "^ +(-[a-zA-Z], )?$opt[ ,]" "$T/help")"
done < "$T/defaults"
echo "man: ok"
