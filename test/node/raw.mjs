// A raw HTTP/2 request to msgq's AWS endpoint (node:http2, no SDK, no
// signature): resolves to { status, data }. Shared by test/node's suites.
import http2 from "node:http2";

export function raw(headers, body) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(process.env.MSGQ_ENDPOINT);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": "/", ...headers });
    let status = 0;
    let data = "";
    req.on("response", (h) => { status = h[":status"]; });
    req.on("data", (d) => { data += d; });
    req.on("end", () => { session.close(); resolve({ status, data }); });
    req.on("error", reject);
    req.end(body);
  });
}
