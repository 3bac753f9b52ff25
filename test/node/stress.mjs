// test/t/026_endpoint_stress.pl: mixed load on the AWS endpoint (auth none):
// HTTP/2 and HTTP/1.1 clients, long polls, subscriptions, streams reset mid-request,
// broken frames and garbage connections, for DURATION seconds; prints {"ok","err"}
// (err: answers of 500 and over). Usage: stress.mjs ENDPOINT DURATION
import http2 from "node:http2";
import http from "node:http";
import net from "node:net";
const E = process.argv[2];
const PORT = Number(new URL(E).port);
const Q = `${E}/postgres/st1`;
const D = Number(process.argv[3] || 20) * 1000;
const end = Date.now() + D;
let ok = 0, err = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function h1(target, body, type = "application/x-amz-json-1.0") {
  return new Promise((res) => {
    const r = http.request(E, { method: "POST", agent, headers: { "x-amz-target": target, "content-type": type } }, (resp) => {
      resp.resume(); resp.on("end", () => { resp.statusCode < 500 ? ok++ : err++; res(); });
    });
    r.on("error", () => { err++; res(); });
    r.end(JSON.stringify(body));
  });
}
async function h2loop() {
  while (Date.now() < end) {
    const s = http2.connect(E);
    s.on("error", () => {});
    const reqs = [];
    for (let i = 0; i < 20; i++) {
      reqs.push(new Promise((res) => {
        const kind = Math.random();
        const target = kind < 0.4 ? "AmazonSQS.SendMessage" : kind < 0.7 ? "AmazonSQS.ReceiveMessage" :
          kind < 0.8 ? "Kinesis_20131202.PutRecord" : "Kinesis_20131202.SubscribeToShard";
        const body = target.endsWith("SendMessage") ? { QueueUrl: Q, MessageBody: "x".repeat(Math.random() * 2000 | 0) } :
          target.endsWith("ReceiveMessage") ? { QueueUrl: Q, WaitTimeSeconds: Math.random() < 0.5 ? 1 : 0 } :
          target.endsWith("PutRecord") ? { StreamName: "sts", PartitionKey: "k" + i, Data: "aGVsbG8=" } :
          { ConsumerARN: "arn:aws:kinesis:msgq:postgres:stream/sts/consumer/c1", ShardId: "shardId-00000000000" + (i % 2), StartingPosition: { Type: "LATEST" } };
        let st;
        try {
          st = s.request({ ":method": "POST", ":path": "/", "x-amz-target": target,
            "content-type": target.startsWith("Kinesis") ? "application/x-amz-json-1.1" : "application/x-amz-json-1.0" });
        } catch { err++; return res(); }
        st.on("response", (h) => { h[":status"] < 500 ? ok++ : err++; });
        st.on("data", () => {});
        st.on("error", () => res());
        st.on("close", () => res());
        st.end(JSON.stringify(body));
        // reset some streams mid-flight (parked polls, open subscriptions)
        if (Math.random() < 0.3) setTimeout(() => { try { st.close(http2.constants.NGHTTP2_CANCEL); } catch {} }, Math.random() * 300);
      }));
    }
    await Promise.race([Promise.all(reqs), new Promise((r) => setTimeout(r, 1500))]);
    Math.random() < 0.5 ? s.destroy() : s.close();
  }
}
async function h1loop() {
  while (Date.now() < end) {
    await h1("AmazonSQS.SendMessage", { QueueUrl: Q, MessageBody: "y" });
    await h1("AmazonSQS.ReceiveMessage", { QueueUrl: Q, WaitTimeSeconds: Math.random() < 0.2 ? 1 : 0 });
    await h1("AmazonSQS.ListQueues", "not json{");
  }
}
async function garbage() {
  while (Date.now() < end) {
    await new Promise((res) => {
      const c = net.connect(PORT, "127.0.0.1", () => {
        const r = Math.random();
        if (r < 0.3) c.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x05\x01\x05\x00\x00\x00\x01" + "\xff".repeat(5));
        else if (r < 0.6) c.write("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
        else c.write(Buffer.from(Array.from({ length: 200 }, () => Math.random() * 256 | 0)));
        setTimeout(() => { c.destroy(); res(); }, Math.random() * 200);
      });
      c.on("error", () => res());
    });
  }
}
await Promise.all([h2loop(), h2loop(), h1loop(), h1loop(), garbage()]);
console.log(JSON.stringify({ ok, err }));
agent.destroy();
process.exit(0);    // open subscriptions would keep the process alive for minutes
