"""The Falcon seed's /protected app behind Envoy and jwt-authn-wasm: no JWT code left.

The filter has verified the token (signature, kid, issuer, expiry) before the request gets here, and hands
the verified payload over in X-Jwt-Payload (base64url JSON). Envoy removes any client-sent copy of that
header, so it can be trusted as long as the app is reachable only through Envoy.
"""

import base64
import json
import os

import falcon

PAYLOAD_HEADER = "X-Jwt-Payload"


def verified_claims(value):
    """The claims the filter forwarded: base64url without padding, JSON inside."""
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


class ClaimsFromEnvoy:
    """Replaces the seed's JWTAuthMiddleware: req.context.user is set as before."""

    def process_request(self, req, resp):
        value = req.get_header(PAYLOAD_HEADER)
        if not value:
            # Only a route the filter does not cover gets here without claims: fail closed.
            raise falcon.HTTPUnauthorized(description="No verified claims from the proxy")
        req.context.user = verified_claims(value)


class ProtectedResource:
    def on_get(self, req, resp):
        resp.media = {"message": "Access granted", "user": req.context.user}


app = falcon.App(middleware=[ClaimsFromEnvoy()])
app.add_route("/protected", ProtectedResource())

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    with make_server(host, port, app) as httpd:
        print(f"falcon example on {host}:{port}", flush=True)
        httpd.serve_forever()
