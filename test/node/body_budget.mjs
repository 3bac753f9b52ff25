// HTTP/2 streams against msgq.endpoint_body_memory = 16MB (TAP 028): a
// stream holding room for 10 MB, then streams that find no room (with and
// without content-length) and one that fits; prints one line per request.
// Usage: node body_budget.mjs PORT
import http2 from "node:http2";

const url = `http://127.0.0.1:${process.argv[2]}`;
const MB = 1000 * 1000;
const body = (n) => "{" + " ".repeat(n - 2) + "}";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A ListQueues stream on its own session; resolves to its :status
function stream(len, { contentLength = true, hold = 0 } = {}) {
  const session = http2.connect(url);
  const headers = {
    ":method": "POST",
    ":path": "/",
    "content-type": "application/x-amz-json-1.0",
    "x-amz-target": "AmazonSQS.ListQueues",
  };
  if (contentLength) headers["content-length"] = String(len);
  const req = session.request(headers);
  const done = new Promise((resolve, reject) => {
    let status = 0;
    session.on("error", reject);
    req.on("response", (h) => { status = h[":status"]; });
    req.on("data", () => {});
    req.on("end", () => { session.close(); resolve(status); });
    req.on("error", reject);
  });
  const b = body(len);
  if (hold > 0) {
    req.write(b.slice(0, hold));
    return { done, finish: () => req.end(b.slice(hold)) };
  }
  req.end(b);
  return { done };
}

const held = stream(10 * MB, { hold: MB });
await sleep(300);
const lines = [];
const second = await stream(10 * MB).done;
const third = await stream(10 * MB, { contentLength: false }).done;
const small = await stream(5 * MB).done;
held.finish();
lines.push(`held 10 MB: ${await held.done}`);
lines.push(`second 10 MB (content-length): ${second}`);
lines.push(`second 10 MB (no content-length): ${third}`);
lines.push(`5 MB: ${small}`);
lines.push(`after: 10 MB: ${await stream(10 * MB, { contentLength: false }).done}`);
console.log(lines.join("\n"));
