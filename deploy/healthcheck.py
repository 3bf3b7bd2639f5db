"""Container health check: GET /api/v1/health on this container's Salon; exit 0 when it is ok.

Runs inside the image (HEALTHCHECK) with the same SALON_* environment as the server.
"""

import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    http = os.environ.get("SALON_HTTP", "false").lower() in ("1", "true", "yes", "on")
    port = os.environ.get("SALON_PORT", "8080" if http else "8443")
    url = f"{'http' if http else 'https'}://127.0.0.1:{port}/api/v1/health"
    context = ssl.create_default_context()
    context.check_hostname = False  # the certificate names the public host, not 127.0.0.1
    context.verify_mode = ssl.CERT_NONE
    try:
        tls = None if http else context
        with urllib.request.urlopen(url, timeout=4, context=tls) as r:  # noqa: S310 - http(s) only
            ok = r.status == 200 and json.load(r).get("status") == "ok"
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
