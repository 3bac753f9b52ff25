// The AWS endpoint driven by the AWS SDK for JavaScript (bench/endpoint.sh):
// N sends, then N receive + delete pairs, one request after the other;
// prints JSON with the rates and the latency percentiles of each.
import { createRequire } from "node:module";

// the SDK that test/node's package-lock.json pins
const require = createRequire(new URL("../test/node/package.json", import.meta.url));
const { SQSClient, SendMessageCommand, ReceiveMessageCommand, DeleteMessageCommand } = require("@aws-sdk/client-sqs");

const [endpoint, accessKeyId, secretAccessKey, n] = process.argv.slice(2);
const sqs = new SQSClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } });
const QueueUrl = `${endpoint}/postgres/bench`;
const N = Number(n);

function summary(ms, total) {
  ms.sort((a, b) => a - b);
  const at = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { per_s: Math.round(ms.length / (total / 1000)), p50_ms: at(0.5), p99_ms: at(0.99) };
}

let t0 = performance.now();
const send = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `message ${i}` }));
  send.push(performance.now() - t);
}
const sendTotal = performance.now() - t0;
t0 = performance.now();
const recv = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl }));
  await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0].ReceiptHandle }));
  recv.push(performance.now() - t);
}
const recvTotal = performance.now() - t0;
console.log(JSON.stringify({ send: summary(send, sendTotal), receive_delete: summary(recv, recvTotal) }));
