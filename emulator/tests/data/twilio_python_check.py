"""Drives the emulator with Twilio's official Python helper library (twilio on PyPI), as an app
would: create, fetch, list with paging, update (redact, cancel), delete, media, feedback and
errors through twilio.rest.Client, and status callbacks received by a local server and checked
with twilio.request_validator.RequestValidator. Run by tests/python.rs; prints one JSON object
with what it saw.

Reads EMU_BASE, EMU_ACCOUNT and EMU_TOKEN. Exit code 3: the twilio package is not installed.
"""

import base64
import datetime
import json
import os
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from twilio.base.exceptions import TwilioRestException
    from twilio.request_validator import RequestValidator
    from twilio.rest import Client
except ImportError:
    sys.exit(3)

BASE = os.environ["EMU_BASE"]
ACCOUNT = os.environ["EMU_ACCOUNT"]
TOKEN = os.environ["EMU_TOKEN"]
AUTH = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
TO = "+15558675310"
FROM = "+15005550006"
SERVICE = "MG0123456789abcdef0123456789abcdef"

RECEIVED = []
VALIDATOR = RequestValidator(TOKEN)


class CallbackHandler(BaseHTTPRequestHandler):
    """Receives status callbacks and validates each with the library's own validator."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        # The URL Twilio called: the Host header and the raw request target.
        url = f"http://{self.headers['Host']}{self.path}"
        signature = self.headers.get("X-Twilio-Signature", "")
        RECEIVED.append(
            {
                "url": url,
                "sid": params.get("MessageSid"),
                "status": params.get("MessageStatus"),
                "valid": VALIDATOR.validate(url, params, signature),
            }
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def admin(path, form=None):
    """POSTs to an admin endpoint of the emulator; returns the HTTP status."""
    data = urllib.parse.urlencode(form or {}).encode()
    request = urllib.request.Request(
        f"{BASE}/emulator/{path}",
        data=data,
        headers={"Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request) as response:
        return response.status


def failure(call):
    """The status and code of a failed call, or None if it succeeded."""
    try:
        call()
        return None
    except TwilioRestException as e:
        return {"status": e.status, "code": e.code}


def describe(message):
    return {
        "sid": message.sid,
        "status": message.status,
        "to": message.to,
        "from": message.from_,
        "body": message.body,
        "num_segments": message.num_segments,
        "num_media": message.num_media,
        "messaging_service_sid": message.messaging_service_sid,
        "date_created_is_date": isinstance(message.date_created, datetime.datetime),
        "account_sid": message.account_sid,
    }


def client_for(token):
    """A client whose requests go to the emulator instead of https://api.twilio.com."""
    client = Client(ACCOUNT, token)
    client.api.base_url = BASE
    return client


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), CallbackHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    callback = f"http://127.0.0.1:{port}/status?tenant='acme'&x=(1)!*&e=%41"

    client = client_for(TOKEN)
    out = {}

    created = client.messages.create(
        to=TO, from_=FROM, body="hello from python", status_callback=callback
    )
    out["created"] = describe(created)
    out["fetched"] = describe(client.messages(created.sid).fetch())

    for i in range(4):
        client.messages.create(to=TO, from_=FROM, body=f"more {i}")
    out["listed"] = [m.sid for m in client.messages.list(page_size=2, limit=5)]
    out["listed_all"] = [m.sid for m in client.messages.stream(page_size=2)]

    mms = client.messages.create(
        to=TO,
        from_=FROM,
        media_url=["https://example.com/a.jpg", "https://example.com/b.png"],
        status_callback=callback,
    )
    media = client.messages(mms.sid).media.list()
    one = client.messages(mms.sid).media(media[0].sid).fetch()
    removed = client.messages(mms.sid).media(media[0].sid).delete()
    out["media"] = {
        "message_sid": mms.sid,
        "count": len(media),
        "content_types": [m.content_type for m in media],
        "fetched_sid": one.sid,
        "fetched_parent": one.parent_sid,
        "removed": removed,
        "left": len(client.messages(mms.sid).media.list()),
    }
    out["feedback"] = client.messages(mms.sid).feedback.create(outcome="confirmed").outcome

    out["idle"] = admin("wait-idle", {"Timeout": "20"})
    out["redacted_body"] = client.messages(created.sid).update(body="").body

    send_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=30)
    scheduled = client.messages.create(
        to=TO,
        messaging_service_sid=SERVICE,
        body="later",
        schedule_type="fixed",
        send_at=send_at,
        status_callback=callback,
    )
    out["scheduled_status"] = scheduled.status
    out["canceled_status"] = client.messages(scheduled.sid).update(status="canceled").status

    wrong = client_for("wrong")
    out["errors"] = {
        "magic_to": failure(lambda: client.messages.create(to="+15005550001", from_=FROM, body="x")),
        "auth": failure(lambda: wrong.messages(created.sid).fetch()),
        "bad_callback": failure(
            lambda: client.messages.create(
                to=TO, from_=FROM, body="x", status_callback="http://bad_host/cb"
            )
        ),
        "bad_update": failure(lambda: client.messages(created.sid).update(status="sent")),
        "not_found": failure(
            lambda: client.messages("SM00000000000000000000000000000000").fetch()
        ),
    }

    out["deleted"] = client.messages(created.sid).delete()
    out["after_delete"] = failure(lambda: client.messages(created.sid).fetch())

    out["idle_again"] = admin("wait-idle", {"Timeout": "20"})
    out["callbacks"] = RECEIVED
    server.shutdown()
    print(json.dumps(out))


main()
