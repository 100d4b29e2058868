# http_bearer_token.py (issue 18, smaller ones): the HTTP API had no authentication. With
# http_bearer_token_file set, every endpoint but /healthz wants `Authorization: Bearer TOKEN`
# (401 with WWW-Authenticate otherwise); without it, nothing changes (loopback default).
# timeout: 60
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402


def get(port, path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as f:
            return f.status, f.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def main():
    with tt.Run() as run:
        tokf = run.path("http-token")
        with open(tokf, "w") as f:
            f.write("s3cret-http-token-42\n")
        os.chmod(tokf, 0o600)
        cp = h.CP(run, "--http-bearer-token-file", tokf)
        assert get(cp.http, "/healthz")[0] == 200  # probes need no token
        st, hd = get(cp.http, "/metrics")
        assert st == 401 and hd["WWW-Authenticate"] == "Bearer", st
        assert get(cp.http, "/api/v1/labels", "wrong-token-000000000")[0] == 401
        assert get(cp.http, "/api/v1/labels", "s3cret-http-token-4")[0] == 401  # a prefix
        assert get(cp.http, "/metrics", "s3cret-http-token-42")[0] == 200
        assert get(cp.http, "/api/v1/labels", "s3cret-http-token-42")[0] == 200
        cp.stop()
        print("bearer token required on every endpoint but /healthz")
        return 0


if __name__ == "__main__":
    sys.exit(main())
