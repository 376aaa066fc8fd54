"""firestore_junk.py: a broken Firestore for tests/t_firestore.sh.

    python3 firestore_junk.py PORTFILE

Answers the n-th list of an offers collection, and the n-th get of an
answer, with the n-th body of LISTS / GETS below (malformed JSON, wrong
shapes, a document from elsewhere, an oversized body), then with a valid
document; DELETE answers {}.  What fsserver.py, being faithful, cannot do.
"""
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ID = "0123456789abcdef0123456789abcdef"
DOCS = "projects/p2pcat-test/databases/(default)/documents"


def doc(path, field, name, blob=b"\xab\xcd"):
    return {"name": "%s/%s" % (DOCS, path), "fields": {
        field: {"stringValue": name},
        "blob": {"bytesValue": base64.b64encode(blob).decode()},
        "expireAt": {"timestampValue": "2099-01-01T00:00:00Z"}}}


OFFER = doc("inbox/bob/offers/" + ID, "to", "bob")
ELSEWHERE = dict(OFFER, name=OFFER["name"].replace("p2pcat-test", "other"))
LISTS = [
    (200, b"{not json"),
    (200, b"[]"),
    (200, b'{"documents": 5}'),
    (200, json.dumps({"documents": [5, "x", None, {"name": 7},
                                    {"name": OFFER["name"], "fields": 3},
                                    {"name": OFFER["name"], "fields": {
                                        "to": {"stringValue": ["bob"]}}}]}).encode()),
    (200, b" " * (2 << 20) + b"{}"),
    (200, json.dumps({"documents": [ELSEWHERE]}).encode()),
]
GETS = [
    (200, b"\x00\xff garbage"),
    (200, json.dumps(dict(doc("inbox/bob/answers/" + ID, "name", "bob"),
                          name=DOCS + "/inbox/eve/answers/" + ID)).encode()),
    (200, b"[" * 100000),
    (200, b" " * (2 << 20)),
]
count = {"list": 0, "get": 0, "delete": 0}
lock = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        with lock:
            if path.endswith("/offers"):
                n = count["list"]
                count["list"] += 1
                if n < len(LISTS):
                    return self.reply(*LISTS[n])
                return self.reply(200, json.dumps({"documents": [OFFER]}).encode())
            if "/answers/" in path:
                n = count["get"]
                count["get"] += 1
                if n < len(GETS):
                    return self.reply(*GETS[n])
                return self.reply(200, json.dumps(
                    doc("inbox/bob/answers/" + ID, "name", "bob", b"\x01\x02")).encode())
            if path == "/_count":
                return self.reply(200, json.dumps(count).encode())
        self.reply(404, b'{"error":{"code":404,"status":"NOT_FOUND"}}')

    def do_DELETE(self):
        with lock:
            count["delete"] += 1
        self.reply(200, b"{}")

    def log_message(self, *a):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass    # the client hanging up on an oversized body is expected


def main():
    srv = Server(("127.0.0.1", 0), H)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
