"""firestore_rest.py: raw REST for tests/t_firestore.sh, against
tests/fsserver.py at 127.0.0.1:$PORT (environment FS_PORT).

    firestore_rest.py dump                 document paths, one a line
    firestore_rest.py field PATH FIELD     a field's value (JSON) of a document
    firestore_rest.py plant COLL ID JSON   create COLL/ID with fields JSON
                                           (- reads it from stdin; owner
                                           token, so anything goes)
    firestore_rest.py control METHOD PATH [JSON]   a /_test/ switch
    firestore_rest.py count METHOD SUBSTR  requests in the log whose method
                                           is METHOD and path holds SUBSTR
    firestore_rest.py statuses SUBSTR      their statuses, space-separated
    firestore_rest.py reads SUBSTR         billed reads of those requests
"""
import json
import os
import sys
import urllib.error
import urllib.request

PROJECT = "p2pcat-test"
DOCS = "projects/%s/databases/(default)/documents" % PROJECT


def req(method, path, body=None):
    url = "http://127.0.0.1:%s%s" % (os.environ["FS_PORT"], path)
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(url, data=data, method=method)
    r.add_header("Authorization", "Bearer owner")
    if data is not None:
        r.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(r, timeout=10) as f:
            raw = f.read()
    except urllib.error.HTTPError as e:
        sys.stderr.write("firestore_rest: %s %s: %d %s\n" %
                         (method, path, e.code, e.read()[:300]))
        sys.exit(1)
    return json.loads(raw) if raw.strip() else None


def log():
    return req("GET", "/_test/log")["requests"]


def main(a):
    if a[0] == "dump":
        for d in req("GET", "/_test/dump").get("documents", []):
            print(d["name"].split("/documents/", 1)[1])
    elif a[0] == "field":
        for d in req("GET", "/_test/dump").get("documents", []):
            if d["name"].endswith("/documents/" + a[1]):
                print(json.dumps(d["fields"].get(a[2])))
    elif a[0] == "plant":
        fields = sys.stdin.read() if a[3] == "-" else a[3]
        req("POST", "/v1/%s/%s?documentId=%s" % (DOCS, a[1], a[2]),
            {"fields": json.loads(fields)})
    elif a[0] == "control":
        r = req(a[1], "/_test/" + a[2], json.loads(a[3]) if len(a) > 3 else None)
        if r is not None and a[1] == "GET":
            print(json.dumps(r))
    elif a[0] == "count":
        print(sum(1 for r in log() if r["method"] == a[1] and a[2] in r["path"]))
    elif a[0] == "statuses":
        print(" ".join(str(r["status"]) for r in log() if a[1] in r["path"]))
    elif a[0] == "reads":
        print(sum(r["reads"] for r in log() if a[1] in r["path"]))
    else:
        sys.exit("firestore_rest: unknown command %s" % a[0])


if __name__ == "__main__":
    main(sys.argv[1:])
