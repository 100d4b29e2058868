# http_tls.py: the HTTP listener over TLS (http_tls_cert_file, http_tls_key_file): curl gets
# /healthz and a query over HTTPS with the certificate checked, TLS 1.2 and 1.3 work, TLS 1.1
# and plain HTTP are refused, the bearer token still applies, the liveness listener stays plain,
# and a key that does not match the certificate, a world-readable key or half the pair stop
# the start with a message naming the problem.
# timeout: 60
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402

TOKEN = b"http-tls-agent-token-0123456789"
BEARER = "http-tls-bearer-0123456789abcdef"


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)


def main():
    for tool in ("openssl", "curl"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return 77
    with tt.Run(logs=("cp.log", "bad.log")) as run:
        cert, key = run.path("cert.pem"), run.path("key.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert)
        os.chmod(key, 0o600)
        bearer = run.path("bearer")
        with open(bearer, "w") as f:
            f.write(BEARER + "\n")
        os.chmod(bearer, 0o600)
        tok = run.token(TOKEN)
        http, health, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cp = run.controlplane(tok, tt.free_port(), http, "--http-tls-cert-file", cert,
                              "--http-tls-key-file", key, "--http-bearer-token-file", bearer,
                              "--health-listen", "127.0.0.1:%d" % health)
        tp.wait_for(lambda: tt.port_open(http) and tt.port_open(health), 20, "listeners")

        def curl(path, *extra):
            r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert,
                                "-H", "Authorization: Bearer " + BEARER] + list(extra) +
                               ["https://127.0.0.1:%d%s" % (http, path)],
                               capture_output=True, text=True, timeout=20)
            return r.returncode, r.stdout, r.stderr

        rc, out, err = curl("/healthz")
        assert rc == 0 and out == "ok\n", (rc, out, err)
        rc, out, err = curl("/api/v1/query?query=vector(1)")
        assert rc == 0 and '"status":"success"' in out, (rc, out, err)
        for v in ("--tlsv1.2", "--tlsv1.3"):  # at least this version: 1.2 pinned, then 1.3
            extra = [v, "--tls-max", v[6:]]
            rc, out, err = curl("/healthz", *extra)
            assert rc == 0 and out == "ok\n", (v, rc, out, err)
        print("ok HTTPS with the certificate checked, TLS 1.2 and 1.3")

        # TLS 1.1 is refused by the server (the client is allowed to offer it)
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % http,
                            "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
                           input="", capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and "BEGIN CERTIFICATE" not in r.stdout, r.stdout[-500:]
        # plain HTTP to the HTTPS port gets no HTTP answer
        r = subprocess.run(["curl", "-sS", "--max-time", "10",
                            "http://127.0.0.1:%d/healthz" % http],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 or "ok" not in r.stdout, r.stdout
        # the bearer token still applies over TLS
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert, "-o",
                            "/dev/null", "-w", "%{http_code}",
                            "https://127.0.0.1:%d/metrics" % http],
                           capture_output=True, text=True, timeout=20)
        assert r.stdout == "401", r.stdout
        # the liveness listener stays plain HTTP
        st, body = tt.http_get("http://127.0.0.1:%d/healthz" % health)
        assert st == 200 and body == "ok\n", (st, body)
        print("ok TLS 1.1 and plain HTTP refused, bearer token kept, liveness plain")
        cp.terminate()
        assert cp.wait(20) == 0

        # configuration mistakes stop the start, naming the problem
        other = run.path("other.pem")
        openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                other)
        os.chmod(other, 0o600)
        loose = run.path("loose.pem")
        shutil.copy(key, loose)
        os.chmod(loose, 0o644)
        for args, want in (
                (["--http-tls-cert-file", cert, "--http-tls-key-file", other],
                 "certificate and key do not load or do not match"),
                (["--http-tls-cert-file", cert, "--http-tls-key-file", loose],
                 "readable by others"),
                (["--http-tls-cert-file", cert], "go together: http_tls_key_file is empty"),
                (["--http-tls-cert-file", tok, "--http-tls-key-file", key], "no PEM block")):
            log = run.log("bad.log")
            p = run.controlplane(tok, tt.free_port(), tt.free_port(), *args,
                                 sock=run.path("bad.sock"), data_dir=run.path("bad"), log=log)
            rc = p.wait(20)
            log.flush()
            text = open(log.name).read()
            assert rc != 0 and want in text, (args, rc, text[-800:])
        print("ok bad TLS configurations refused")
    print("http_tls: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
