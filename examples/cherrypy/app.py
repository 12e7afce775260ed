"""The CherryPy seed's /protected app behind Envoy and jwt-authn-wasm: no JWT code left.

The filter has verified the token (signature, kid, issuer, expiry) before the request gets here, and hands
the verified payload over in X-Jwt-Payload (base64url JSON). Envoy removes any client-sent copy of that
header, so it can be trusted as long as the app is reachable only through Envoy.
"""

import base64
import json
import os

import cherrypy

PAYLOAD_HEADER = "X-Jwt-Payload"


def verified_claims(value):
    """The claims the filter forwarded: base64url without padding, JSON inside."""
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def claims_from_envoy():
    """Replaces the seed's require_jwt tool: cherrypy.request.user is set as before."""
    value = cherrypy.request.headers.get(PAYLOAD_HEADER)
    if not value:
        # Only a route the filter does not cover gets here without claims: fail closed, in JSON.
        cherrypy.response.status = 401
        cherrypy.response.headers["Content-Type"] = "application/json"
        cherrypy.response.body = json.dumps({"error": "No verified claims from the proxy"}).encode()
        cherrypy.request.handler = None
        return
    cherrypy.request.user = verified_claims(value)


cherrypy.tools.claims_from_envoy = cherrypy.Tool("before_handler", claims_from_envoy)


class ProtectedAPI:
    @cherrypy.expose
    @cherrypy.tools.json_out()
    @cherrypy.tools.claims_from_envoy()
    def protected(self):
        return {"message": "Access granted", "user": cherrypy.request.user}


if __name__ == "__main__":
    cherrypy.config.update(
        {
            "server.socket_host": os.environ.get("HOST", "127.0.0.1"),
            "server.socket_port": int(os.environ.get("PORT", "8000")),
            "engine.autoreload.on": False,
        }
    )
    cherrypy.quickstart(ProtectedAPI())
