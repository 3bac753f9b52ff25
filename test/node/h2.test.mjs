// SQS over cleartext HTTP/2 (@aws-sdk/client-sqs with the SDK's HTTP/2
// handler): requests multiplexed on one connection, a long poll parked on
// one stream while other streams are answered, and woken by a send.
// test/t/024_aws_sdk.pl runs it with MSGQ_ENDPOINT, MSGQ_ACCESS_KEY_ID and
// MSGQ_SECRET_ACCESS_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SQSClient, CreateQueueCommand, SendMessageCommand, ReceiveMessageCommand,
  DeleteQueueCommand, QueueDoesNotExist,
} from "@aws-sdk/client-sqs";
import { NodeHttp2Handler } from "@smithy/node-http-handler";
import { raw } from "./raw.mjs";
import net from "node:net";
import http2 from "node:http2";

const sqs = new SQSClient({
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  requestHandler: new NodeHttp2Handler({ disableConcurrentStreams: false }),
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
});

test("a long poll parked on one stream does not hold the others", async () => {
  const { QueueUrl: waiting } = await sqs.send(new CreateQueueCommand({ QueueName: "h2-waiting" }));
  const { QueueUrl: busy } = await sqs.send(new CreateQueueCommand({ QueueName: "h2-busy" }));
  const started = Date.now();
  const poll = sqs.send(new ReceiveMessageCommand({ QueueUrl: waiting, WaitTimeSeconds: 10 }));
  // meanwhile, 20 sends and receives on the same connection
  await Promise.all(Array.from({ length: 20 }, (_, i) =>
    sqs.send(new SendMessageCommand({ QueueUrl: busy, MessageBody: `m${i}` }))));
  let got = 0;
  while (got < 20) {
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: busy, MaxNumberOfMessages: 10 }));
    got += (r.Messages ?? []).length;
  }
  assert.equal(got, 20);
  assert.ok(Date.now() - started < 5000, "the other streams were answered while the poll waited");
  await sqs.send(new SendMessageCommand({ QueueUrl: waiting, MessageBody: "wake up" }));
  const r = await poll;
  assert.equal(r.Messages.length, 1);
  assert.equal(r.Messages[0].Body, "wake up");
  assert.ok(Date.now() - started < 9000, "the parked poll was woken by the send, not by its end");
  await sqs.send(new DeleteQueueCommand({ QueueUrl: waiting }));
  await sqs.send(new DeleteQueueCommand({ QueueUrl: busy }));
});

test("errors and large bodies over HTTP/2", async () => {
  await assert.rejects(
    sqs.send(new SendMessageCommand({ QueueUrl: `${process.env.MSGQ_ENDPOINT}/000000000000/h2-none`, MessageBody: "x" })),
    (e) => e instanceof QueueDoesNotExist && e.$metadata.httpStatusCode === 400);
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "h2-large" }));
  const body = "x".repeat(256 * 1024);
  const sent = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
  assert.ok(sent.MessageId);
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl }));
  assert.equal(r.Messages[0].Body, body);
  await sqs.send(new DeleteQueueCommand({ QueueUrl }));
});

test("raw HTTP/2: an unsigned request, a body over 16 MiB, a broken frame", async () => {
  const unsigned = await raw({ "x-amz-target": "AmazonSQS.ListQueues", "content-type": "application/x-amz-json-1.0" }, "{}");
  assert.equal(unsigned.status, 403);
  assert.equal(JSON.parse(unsigned.data).__type, "com.amazonaws.sqs#MissingAuthenticationToken");
  const big = await raw({ "x-amz-target": "AmazonSQS.ListQueues", "content-type": "application/x-amz-json-1.0" },
    "x".repeat(17 * 1024 * 1024));
  assert.equal(big.status, 413);
  // the preface, then a frame that is not SETTINGS: the connection is closed
  const closed = await new Promise((resolve) => {
    const u = new URL(process.env.MSGQ_ENDPOINT);
    const s = net.connect(Number(u.port), u.hostname, () => {
      s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      s.write(Buffer.from([0, 0, 4, 0xff, 0, 0, 0, 0, 1, 1, 2, 3, 4]));
    });
    s.on("data", () => {});
    s.on("error", () => resolve(true));
    s.on("close", () => resolve(true));
    setTimeout(() => { s.destroy(); resolve(false); }, 5000);
  });
  assert.ok(closed, "a broken connection preface ends the connection");
});

// Four 6 MB bodies at once on one connection, their frames interleaved (each
// stream written in 64 kB chunks as its window allows): 24 MB in flight
// together, more than the 16 MiB a connection buffers. The endpoint holds
// the later streams back by not giving their windows back until the earlier
// ones are whole; none is refused as too large. Unsigned, each is answered
// 403 once whole.
test("raw HTTP/2: four 6 MB bodies interleaved on one connection are all read", async () => {
  const session = http2.connect(process.env.MSGQ_ENDPOINT);
  const chunk = Buffer.alloc(64 * 1024, "x");
  const one = () => new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST", ":path": "/", "x-amz-target": "AmazonSQS.ListQueues",
      "content-type": "application/x-amz-json-1.0",
    });
    let status = 0;
    let data = "";
    req.on("response", (h) => { status = h[":status"]; });
    req.on("data", (d) => { data += d; });
    req.on("end", () => resolve({ status, data }));
    req.on("error", reject);
    (async () => {
      req.write('{"QueueNamePrefix": "');
      for (let sent = 0; sent < 6 * 1000 * 1000; sent += chunk.length)
        if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
      req.end('"}');
    })().catch(reject);
  });
  const answers = await Promise.all([one(), one(), one(), one()]);
  session.close();
  assert.deepEqual(answers.map((a) => `${a.status} ${JSON.parse(a.data).__type}`),
    Array(4).fill("403 com.amazonaws.sqs#MissingAuthenticationToken"));
});
