// The AWS endpoint driven by the AWS SDK for JavaScript (bench/endpoint.sh):
// N sends, then N receive + delete pairs, one request after the other, over
// HTTP/1.1 keep-alive (the SQS client's default); N sends over HTTP/2; N
// Kinesis PutRecord calls with the Kinesis client's default (HTTP/2); and
// N sends with C requests in flight at once (HTTP/1.1, a connection each).
// Prints JSON with the rates and the latency percentiles of each.
import { createRequire } from "node:module";

// the SDK that test/node's package-lock.json pins
const require = createRequire(new URL("../test/node/package.json", import.meta.url));
const { SQSClient, SendMessageCommand, ReceiveMessageCommand, DeleteMessageCommand } = require("@aws-sdk/client-sqs");
const { KinesisClient, PutRecordCommand } = require("@aws-sdk/client-kinesis");
const { NodeHttp2Handler } = require("@smithy/node-http-handler");

const [endpoint, accessKeyId, secretAccessKey, n, c] = process.argv.slice(2);
const config = { endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } };
const sqs = new SQSClient(config);
const sqs2 = new SQSClient({ ...config, requestHandler: new NodeHttp2Handler() });
const kinesis = new KinesisClient(config);
const QueueUrl = `${endpoint}/postgres/bench`;
const N = Number(n);
const C = Number(c);
const data = new TextEncoder().encode("record");

function summary(ms, total) {
  ms.sort((a, b) => a - b);
  const at = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return { per_s: Math.round(ms.length / (total / 1000)), p50_ms: at(0.5), p99_ms: at(0.99) };
}

// N calls of op, `inflight` at a time
async function run(op, inflight = 1) {
  const ms = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (next < N) {
      const i = next++;
      const t = performance.now();
      await op(i);
      ms.push(performance.now() - t);
    }
  }));
  return summary(ms, performance.now() - t0);
}

const out = {};
out.send = await run((i) => sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `message ${i}` })));
out.receive_delete = await run(async () => {
  const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl }));
  await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0].ReceiptHandle }));
});
out.send_h2 = await run((i) => sqs2.send(new SendMessageCommand({ QueueUrl, MessageBody: `message ${i}` })));
out.put_record = await run((i) => kinesis.send(new PutRecordCommand({
  StreamName: "bench", PartitionKey: `k${i % 64}`, Data: data })));
out.send_concurrent = await run((i) => sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `message ${i}` })), C);
console.log(JSON.stringify(out));
sqs2.destroy();
kinesis.destroy();
