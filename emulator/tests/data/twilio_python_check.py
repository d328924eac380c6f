"""Drives the emulator with Twilio's official Python helper library (twilio on PyPI).

Reads EMU_BASE, EMU_ACCOUNT, EMU_TOKEN and EMU_CALLBACK from the environment, creates, fetches
and lists messages through twilio.rest.Client, and prints one JSON object with what it saw.
Exit code 3 means the twilio package is not installed.
"""

import json
import os
import sys

try:
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client
except ImportError:
    sys.exit(3)

BASE = os.environ["EMU_BASE"]
ACCOUNT = os.environ["EMU_ACCOUNT"]
TOKEN = os.environ["EMU_TOKEN"]
CALLBACK = os.environ["EMU_CALLBACK"]


class EmulatorHttpClient(TwilioHttpClient):
    """Sends every request the library builds for https://api.twilio.com to the emulator."""

    def request(self, method, url, *args, **kwargs):
        if url.startswith("https://api.twilio.com"):
            url = BASE + url[len("https://api.twilio.com"):]
        return super().request(method, url, *args, **kwargs)


def when(value):
    return value.isoformat() if value is not None else None


def describe(message):
    return {
        "sid": message.sid,
        "status": message.status,
        "to": message.to,
        "from": message.from_,
        "body": message.body,
        "num_segments": message.num_segments,
        "num_media": message.num_media,
        "error_code": message.error_code,
        "price": str(message.price) if message.price is not None else None,
        "date_created": when(message.date_created),
        "date_created_is_datetime": hasattr(message.date_created, "tzinfo"),
        "uri": message.uri,
        "account_sid": message.account_sid,
    }


client = Client(ACCOUNT, TOKEN, http_client=EmulatorHttpClient())
out = {}

created = client.messages.create(
    to="+15558675310", from_="+15005550006", body="hello from python", status_callback=CALLBACK
)
out["created"] = describe(created)
out["fetched"] = describe(client.messages(created.sid).fetch())

for i in range(4):
    client.messages.create(to="+15558675310", from_="+15005550006", body=f"more {i}")
listed = client.messages.list(page_size=2, limit=5)
out["listed"] = [m.sid for m in listed]
out["streamed_all"] = [m.sid for m in client.messages.stream(page_size=2)]

try:
    client.messages.create(to="+15005550001", from_="+15005550006", body="x")
    out["magic_error"] = None
except TwilioRestException as e:
    out["magic_error"] = {"status": e.status, "code": e.code, "msg": e.msg}

try:
    # (list() raises a plain TwilioException on any error; fetch() raises the typed one.)
    Client(ACCOUNT, "wrong", http_client=EmulatorHttpClient()).messages(created.sid).fetch()
    out["auth_error"] = None
except TwilioRestException as e:
    out["auth_error"] = {"status": e.status, "code": e.code}

print(json.dumps(out))
