"""The Litestar seed's /protected app behind Envoy and jwt-authn-wasm: no JWT code left.

The filter has verified the token (signature, kid, issuer, expiry) before the request gets here, and hands
the verified payload over in X-Jwt-Payload (base64url JSON). Envoy removes any client-sent copy of that
header, so it can be trusted as long as the app is reachable only through Envoy.
"""

import base64
import json
import os

from litestar import Litestar, Request, get
from litestar.exceptions import NotAuthorizedException

PAYLOAD_HEADER = "x-jwt-payload"


def verified_claims(value: str) -> dict:
    """The claims the filter forwarded: base64url without padding, JSON inside."""
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


async def claims_from_envoy(request: Request) -> None:
    """Replaces the seed's jwt_auth_middleware: request.state.user is set as before."""
    value = request.headers.get(PAYLOAD_HEADER)
    if not value:
        # Only a route the filter does not cover gets here without claims: fail closed.
        raise NotAuthorizedException(detail="No verified claims from the proxy")
    request.state.user = verified_claims(value)


@get("/protected")
async def protected_route(request: Request) -> dict:
    return {"message": "Access granted", "user": request.state.user}


app = Litestar(route_handlers=[protected_route], before_request=claims_from_envoy)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
    )
