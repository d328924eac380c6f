"""Checks webhook requests with twilio-python's own RequestValidator. Run by tests/inbound.rs.

Reads EMU_TOKEN and, on stdin, a JSON list of {"url", "params": [[key, value], ...],
"signature"}; prints a JSON list of booleans, one per request (RequestValidator.validate).

Exit code 3: the twilio package is not installed.
"""

import json
import os
import sys

try:
    from twilio.request_validator import RequestValidator
except ImportError:
    sys.exit(3)

VALIDATOR = RequestValidator(os.environ["EMU_TOKEN"])
requests = json.load(sys.stdin)
print(
    json.dumps(
        [
            VALIDATOR.validate(r["url"], dict(r["params"]), r["signature"])
            for r in requests
        ]
    )
)
