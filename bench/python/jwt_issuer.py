"""A stand-in authorization server for bench/run.sh: publishes one ES256 key as a JWKS and
writes one token signed with it (for the gateway's JWT rows of scenario 1).

    python jwt_issuer.py --host 127.0.0.1 --port 18621 --token-file FILE --audience AUD

GET /jwks.json answers the key set; the token (iss "bench-issuer", sub "bench", aud AUD,
valid for an hour) goes to FILE before the server listens. pyjwt and cryptography come with
the MCP SDK pinned in requirements.txt.
"""

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "bench-issuer"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--audience", required=True)
    args = parser.parse_args()

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "bench", "alg": "ES256", "use": "sig"})
    jwks = json.dumps({"keys": [public]}).encode()
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "bench", "aud": args.audience, "iat": now, "exp": now + 3600}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "bench"})
    with open(args.token_file, "w", encoding="ascii") as out:
        out.write(token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            if self.path != "/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *_args):
            pass

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
