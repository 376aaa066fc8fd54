#!/bin/sh
# make install / uninstall honour DESTDIR, PREFIX, BINDIR and MANDIR.
. "$(dirname "$0")/lib.sh"
cd "$SRCDIR" || fail "no source dir"
make -s install DESTDIR="$T/root" PREFIX=/usr > "$T/log" 2>&1 || fail "install: $(cat "$T/log")"
[ -x "$T/root/usr/bin/p2pcat" ] || fail "no /usr/bin/p2pcat"
check_eq "page mode" "$(stat -c %a "$T/root/usr/share/man/man1/p2pcat.1")" 644
[ -f "$T/root/usr/share/doc/p2pcat/p2pcat.conf.example" ] || fail "no sample config"
"$T/root/usr/bin/p2pcat" --version | grep -q '^p2pcat ' || fail "installed binary does not run"
make -s install DESTDIR="$T/root2" BINDIR=/opt/bin MANDIR=/opt/man > "$T/log" 2>&1 || fail "install 2"
[ -x "$T/root2/opt/bin/p2pcat" ] && [ -f "$T/root2/opt/man/man1/p2pcat.1" ] || fail "BINDIR/MANDIR ignored"
make -s uninstall DESTDIR="$T/root" PREFIX=/usr > "$T/log" 2>&1 || fail "uninstall: $(cat "$T/log")"
[ -e "$T/root/usr/bin/p2pcat" ] && fail "uninstall left the binary"
[ -e "$T/root/usr/share/man/man1/p2pcat.1" ] && fail "uninstall left the page"
[ -e "$T/root/usr/share/doc/p2pcat/p2pcat.conf.example" ] && fail "uninstall left the sample config"
echo "install: ok"
