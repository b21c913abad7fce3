// One Session Manager session through the ssm-session library, as its Node example runs one:
// node session.js STREAM_URL TOKEN ROWS COLS LINE...
// Opens the data channel, sends each LINE (a newline added) once the output so far ends with
// a prompt ("$ " or "# "), and after the last one waits for the channel to close. Prints
// {"output": ..., "closed": ..., "closedPayload": ...} as JSON.
"use strict";
const WebSocket = require("ws");
const { ssm } = require("ssm-session");

const [url, token, rows, cols, ...lines] = process.argv.slice(2);
const termOptions = { rows: Number(rows), cols: Number(cols) };
const decoder = new TextDecoder();
const encoder = new TextEncoder();
let output = "";
let closedPayload = null;
let next = 0;

const ws = new WebSocket(url);
ws.binaryType = "arraybuffer";
ws.onopen = () => ssm.init(ws, { token, termOptions });
ws.onmessage = (event) => {
  const m = ssm.decode(event.data);
  if (m.messageType === "acknowledge") return;
  ssm.sendACK(ws, m);
  if (m.messageType === "channel_closed") {
    closedPayload = JSON.parse(decoder.decode(m.payload));
    return;
  }
  if (m.payloadType === 1) {
    output += decoder.decode(m.payload);
    if (next < lines.length && /[$#] $/.test(output)) {
      ssm.sendText(ws, encoder.encode(lines[next++] + "\n"));
    }
  }
};
const done = (closed) => {
  process.stdout.write(JSON.stringify({ output, closed, closedPayload }));
  process.exit(0);
};
ws.onclose = () => done(true);
ws.onerror = (e) => { output += `\n[ws error: ${e.message}]`; };
setTimeout(() => done(false), 30000);
