// Drives the emulator with Twilio's official Node.js helper library (twilio on npm), as an app
// would: create, fetch, list with paging, update (redact, cancel), delete, media, feedback and
// errors through the client, and status callbacks received by a local server and checked with
// twilio.validateRequest. Run by tests/node.rs; prints one JSON object with what it saw.
//
// Reads EMU_BASE, EMU_ACCOUNT and EMU_TOKEN. Exit code 3: the twilio package is not installed.
"use strict";

let twilio;
try {
  twilio = require("twilio");
} catch (e) {
  process.exit(3);
}
const http = require("http");

const BASE = process.env.EMU_BASE;
const ACCOUNT = process.env.EMU_ACCOUNT;
const TOKEN = process.env.EMU_TOKEN;
const AUTH = "Basic " + Buffer.from(`${ACCOUNT}:${TOKEN}`).toString("base64");
const TO = "+15558675310";
const FROM = "+15005550006";
const SERVICE = "MG0123456789abcdef0123456789abcdef";

/** Receives status callbacks and validates each with the library's own validator. */
function callbackServer() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const params = Object.fromEntries(new URLSearchParams(body));
      // The URL Twilio called: the Host header and the raw request target.
      const url = `http://${req.headers.host}${req.url}`;
      const signature = req.headers["x-twilio-signature"] || "";
      received.push({
        url,
        sid: params.MessageSid,
        status: params.MessageStatus,
        valid: twilio.validateRequest(TOKEN, signature, url, params),
      });
      res.writeHead(204);
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, received }))
  );
}

/** POSTs to an admin endpoint of the emulator. */
async function admin(path, form) {
  const r = await fetch(`${BASE}/emulator/${path}`, {
    method: "POST",
    headers: {
      Authorization: AUTH,
      "Content-Type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams(form || {}).toString(),
  });
  return r.status;
}

/** The status and code of a failed call, or null if it succeeded. */
async function failure(call) {
  try {
    await call();
    return null;
  } catch (e) {
    return { status: e.status, code: e.code };
  }
}

function describe(m) {
  return {
    sid: m.sid,
    status: m.status,
    to: m.to,
    from: m.from,
    body: m.body,
    num_segments: m.numSegments,
    num_media: m.numMedia,
    messaging_service_sid: m.messagingServiceSid,
    date_created_is_date: m.dateCreated instanceof Date && !isNaN(m.dateCreated),
    account_sid: m.accountSid,
  };
}

async function main() {
  const { server, received } = await callbackServer();
  const port = server.address().port;
  const callback = `http://127.0.0.1:${port}/status?tenant='acme'&x=(1)!*&e=%41`;

  const client = twilio(ACCOUNT, TOKEN);
  client.api.baseUrl = BASE;
  const out = {};

  const created = await client.messages.create({
    to: TO,
    from: FROM,
    body: "hello from node",
    statusCallback: callback,
  });
  out.created = describe(created);
  out.fetched = describe(await client.messages(created.sid).fetch());

  for (let i = 0; i < 4; i++) {
    await client.messages.create({ to: TO, from: FROM, body: `more ${i}` });
  }
  out.listed = (await client.messages.list({ pageSize: 2, limit: 5 })).map((m) => m.sid);
  out.listed_all = (await client.messages.list({ pageSize: 2 })).map((m) => m.sid);

  const mms = await client.messages.create({
    to: TO,
    from: FROM,
    mediaUrl: ["https://example.com/a.jpg", "https://example.com/b.png"],
    statusCallback: callback,
  });
  const media = await client.messages(mms.sid).media.list();
  const one = await client.messages(mms.sid).media(media[0].sid).fetch();
  const removed = await client.messages(mms.sid).media(media[0].sid).remove();
  out.media = {
    message_sid: mms.sid,
    count: media.length,
    content_types: media.map((m) => m.contentType),
    fetched_sid: one.sid,
    fetched_parent: one.parentSid,
    removed,
    left: (await client.messages(mms.sid).media.list()).length,
  };
  out.feedback = (await client.messages(mms.sid).feedback.create({ outcome: "confirmed" })).outcome;

  out.idle = await admin("wait-idle", { Timeout: "20" });
  out.redacted_body = (await client.messages(created.sid).update({ body: "" })).body;

  const sendAt = new Date(Date.now() + 30 * 60 * 1000);
  const scheduled = await client.messages.create({
    to: TO,
    messagingServiceSid: SERVICE,
    body: "later",
    scheduleType: "fixed",
    sendAt,
    statusCallback: callback,
  });
  out.scheduled_status = scheduled.status;
  out.canceled_status = (await client.messages(scheduled.sid).update({ status: "canceled" })).status;

  // A client with the wrong token, pointed at the emulator like the other one.
  const wrong = twilio(ACCOUNT, "wrong");
  wrong.api.baseUrl = BASE;
  out.errors = {
    magic_to: await failure(() => client.messages.create({ to: "+15005550001", from: FROM, body: "x" })),
    auth: await failure(() => wrong.messages(created.sid).fetch()),
    bad_callback: await failure(() =>
      client.messages.create({ to: TO, from: FROM, body: "x", statusCallback: "http://bad_host/cb" })
    ),
    bad_update: await failure(() => client.messages(created.sid).update({ status: "sent" })),
    not_found: await failure(() => client.messages("SM00000000000000000000000000000000").fetch()),
  };
  out.deleted = await client.messages(created.sid).remove();
  out.after_delete = await failure(() => client.messages(created.sid).fetch());

  out.idle_again = await admin("wait-idle", { Timeout: "20" });
  out.callbacks = received;
  server.close();
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
