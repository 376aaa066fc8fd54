#!/bin/sh
# ssh through p2pcat, with real OpenSSH, across two cone NATs: the server
# side runs `p2pcat -l -k -c "nc 127.0.0.1 PORT" NAME' in front of an sshd
# on a loopback port of its namespace, the client `ssh -o ProxyCommand=
# "p2pcat %h" root@NAME'.  Three ssh sessions at once each run a command,
# 32 MiB go through `ssh ... sha256sum' intact, scp copies a file.  Then a
# second protocol: a web server fetched with curl through a caller that
# is a plain pipe (nc on a local port feeding p2pcat, no -c).
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables turnserver /usr/sbin/sshd ssh scp ssh-keygen nc curl; do
	command -v $c >/dev/null 2>&1 || skip "no $c"
done
. "$SRCDIR/tests/natlab.sh"
lab_cone_cone || fail "lab"
STUN="--stun $(lab_ip stun):3478"
PORT=2222
export P2PCAT_SIGNAL="dir:$T/rv"

# sshd on 127.0.0.1:$PORT inside a's namespace, keys and config of its own.
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey" || fail "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -f "$T/id" || fail "ssh-keygen"
cp "$T/id.pub" "$T/authorized_keys"
# sshd's privilege separation directory, on the host: removed at the
# end if this test made it.
if [ ! -d /run/sshd ]; then
	mkdir /run/sshd || fail "mkdir /run/sshd"
	at_exit 'rmdir /run/sshd 2>/dev/null'
fi
cat > "$T/sshd_config" <<EOF
ListenAddress 127.0.0.1:$PORT
HostKey $T/hostkey
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxSessions 10
MaxStartups 10
Subsystem sftp internal-sftp
EOF
lab_bg a /usr/sbin/sshd -D -e -f "$T/sshd_config" 2> "$T/sshd.log"
tcp_up() { [ -n "$(ip netns exec "$LAB-a" ss -Htln "sport = :$PORT")" ]; }
wait_for 10 tcp_up || fail "sshd did not start: $(cat "$T/sshd.log")"

# The client side's key is the only one the server side lets in.
lab_run b "$P2PCAT" --id > "$T/allow" 2>/dev/null || fail "--id on b"
lab_bg a "$P2PCAT" -l -k --allow "$T/allow" $STUN -c "nc 127.0.0.1 $PORT" home \
    2> "$T/l.err" < /dev/null

PROXY="$P2PCAT $STUN %h"
sshb() {
	lab_run b ssh -F /dev/null -i "$T/id" -o IdentitiesOnly=yes -o BatchMode=yes \
	    -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=accept-new \
	    -o ProxyCommand="$PROXY" "$@"
}

# The first contact records the host key; then three sessions at once.
sshb root@home true 2> "$T/ssh0.err" || fail "ssh: $(cat "$T/ssh0.err"); p2pcat: $(cat "$T/l.err")"
for i in 1 2 3; do
	sshb root@home "echo session $i; sleep 1; echo \$SSH_CONNECTION | wc -w" \
	    > "$T/ssh$i.out" 2> "$T/ssh$i.err" &
	eval sp$i=\$!
done
for i in 1 2 3; do
	eval wait \$sp$i || fail "ssh session $i: $(cat "$T/ssh$i.err")"
	check_eq "ssh session $i's output" "$(cat "$T/ssh$i.out" | tr '\n' ' ')" "session $i 4 "
done
echo "three sessions at once: ok"

randfile "$T/big" 32
sshb root@home sha256sum < "$T/big" > "$T/sum" 2> "$T/ssh4.err" || fail "ssh sha256sum: $(cat "$T/ssh4.err")"
check_eq "32 MiB through ssh" "$(cut -d' ' -f1 "$T/sum")" "$(sha "$T/big")"
echo "32 MiB: ok"

randfile "$T/file" 2
lab_run b scp -q -F /dev/null -i "$T/id" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$T/known_hosts" -o ProxyCommand="$PROXY" \
    "$T/file" root@home:"$T/copy" 2> "$T/scp.err" || fail "scp: $(cat "$T/scp.err")"
check_eq "scp's copy" "$(sha "$T/copy")" "$(sha "$T/file")"
echo "scp: ok"

# HTTP: python's web server on a's loopback, a listener in front of it;
# on b, nc on a local port is a plain pipe into a caller without -c.
mkdir "$T/www"
randfile "$T/www/page" 1
(cd "$T/www" && lab_bg a python3 -m http.server --bind 127.0.0.1 8000 > "$T/http.log" 2>&1)
http_up() { [ -n "$(ip netns exec "$LAB-a" ss -Htln "sport = :8000")" ]; }
wait_for 10 http_up || fail "http.server did not start: $(cat "$T/http.log")"
lab_bg a "$P2PCAT" -l -k --allow "$T/allow" $STUN -c "nc 127.0.0.1 8000" web \
    2> "$T/w.err" < /dev/null
mkfifo "$T/back"
lab_bg b sh -c "nc -N -l 127.0.0.1 8080 < '$T/back' | '$P2PCAT' $STUN web > '$T/back'" 2> "$T/pipe.err"
wait_tcp_b() { [ -n "$(ip netns exec "$LAB-b" ss -Htln "sport = :8080")" ]; }
wait_for 10 wait_tcp_b || fail "nc did not listen on b"
lab_run b curl -sS --max-time 30 -o "$T/page.got" http://127.0.0.1:8080/page 2> "$T/curl.err" ||
	fail "curl: $(cat "$T/curl.err"); pipe: $(cat "$T/pipe.err"); listener: $(cat "$T/w.err")"
check_eq "the page fetched with curl" "$(sha "$T/page.got")" "$(sha "$T/www/page")"
echo "http: ok"
echo "t_ssh: ok"
