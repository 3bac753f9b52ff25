// Kinesis enhanced fan-out over msgq's AWS endpoint: SubscribeToShard's
// event stream (HTTP/2, AWS's event-stream encoding) read with the
// unmodified @aws-sdk/client-kinesis. test/t/024_aws_sdk.pl runs it with
// MSGQ_ENDPOINT, MSGQ_ACCESS_KEY_ID and MSGQ_SECRET_ACCESS_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  SubscribeToShardCommand, PutRecordsCommand, DeleteStreamCommand, ResourceInUseException,
  ResourceNotFoundException, InvalidArgumentException,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import http2 from "node:http2";
import { raw } from "./raw.mjs";

const options = {
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
};
const kinesis = new KinesisClient(options);
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("HTTP/2: a request left unfinished is cut at msgq.endpoint_request_timeout, PINGs or not", async () => {
  const session = http2.connect(process.env.MSGQ_ENDPOINT);
  session.on("error", () => {});
  const req = session.request({ ":method": "POST", ":path": "/", "x-amz-target": "AmazonSQS.ListQueues" });
  req.on("error", () => {});
  req.write("{");       // and never the rest
  const t0 = Date.now();
  const pings = setInterval(() => { try { session.ping(() => {}); } catch {} }, 500);
  const closed = await new Promise((resolve) => {
    session.on("close", () => resolve(true));
    setTimeout(() => resolve(false), 15000);
  });
  clearInterval(pings);
  session.destroy();
  assert.ok(closed, "the connection was closed");
  assert.ok(Date.now() - t0 < 14000, `after ${Date.now() - t0} ms`);
});

// the next event of an event stream's iterator, or null at its end
async function next(it, ms = 8000) {
  const r = await Promise.race([it.next(), sleep(ms).then(() => ({ timeout: true }))]);
  assert.ok(!r.timeout, `an event within ${ms} ms`);
  return r.done ? null : r.value;
}

test("SubscribeToShard: records pushed as they commit, in order, then a takeover", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName: "sdk-fanout", ShardCount: 1 }));
  const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-fanout" }));
  const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: d.StreamARN, ConsumerName: "fanout-app" }));
  const ShardId = "shardId-000000000000";
  const sub = await kinesis.send(new SubscribeToShardCommand({
    ConsumerARN: Consumer.ConsumerARN, ShardId, StartingPosition: { Type: "TRIM_HORIZON" } }));
  const it = sub.EventStream[Symbol.asyncIterator]();
  const first = await next(it);
  assert.deepEqual(first.SubscribeToShardEvent.Records, [], "an empty shard: no records yet");

  // again at once: refused, as Kinesis does within 5 seconds
  await assert.rejects(kinesis.send(new SubscribeToShardCommand({
    ConsumerARN: Consumer.ConsumerARN, ShardId, StartingPosition: { Type: "LATEST" } })), ResourceInUseException);

  const t0 = Date.now();
  await kinesis.send(new PutRecordsCommand({ StreamName: "sdk-fanout",
    Records: ["a", "b", "c"].map((x) => ({ PartitionKey: x, Data: enc.encode(`rec-${x}`) })) }));
  const got = [];
  let last;
  while (got.length < 3) {
    const e = (await next(it)).SubscribeToShardEvent;
    got.push(...e.Records.map((r) => dec.decode(r.Data)));
    last = e;
  }
  assert.ok(Date.now() - t0 < 2000, "pushed at the put's commit, not at a heartbeat");
  assert.deepEqual(got, ["rec-a", "rec-b", "rec-c"]);
  assert.equal(last.ContinuationSequenceNumber, last.Records.at(-1).SequenceNumber,
    "the continuation is the last record delivered");
  assert.equal(last.MillisBehindLatest, 0);

  // an event at least every 5 seconds with nothing new; after 5 seconds a new
  // subscription takes over and the old event stream ends
  const beat = (await next(it, 7000)).SubscribeToShardEvent;
  assert.deepEqual(beat.Records, []);
  assert.equal(beat.ContinuationSequenceNumber, last.ContinuationSequenceNumber);
  // an unsigned request cannot take the subscription over: refused, and the
  // stream goes on
  const { status: unsigned } = await raw({ "x-amz-target": "Kinesis_20131202.SubscribeToShard",
    "content-type": "application/x-amz-json-1.1" },
    JSON.stringify({ ConsumerARN: Consumer.ConsumerARN, ShardId, StartingPosition: { Type: "LATEST" } }));
  assert.equal(unsigned, 403);
  await kinesis.send(new PutRecordsCommand({ StreamName: "sdk-fanout",
    Records: [{ PartitionKey: "x", Data: enc.encode("rec-x") }] }));
  let more = [];
  while (more.length === 0) {
    const e = (await next(it)).SubscribeToShardEvent;
    more = e.Records.map((r) => dec.decode(r.Data));
    if (more.length) last = e;
  }
  assert.deepEqual(more, ["rec-x"], "the first subscription still gets the records");
  const sub2 = await kinesis.send(new SubscribeToShardCommand({
    ConsumerARN: Consumer.ConsumerARN, ShardId,
    StartingPosition: { Type: "AFTER_SEQUENCE_NUMBER", SequenceNumber: last.ContinuationSequenceNumber } }));
  assert.equal(await next(it), null, "the old subscription ended");
  const it2 = sub2.EventStream[Symbol.asyncIterator]();
  assert.deepEqual((await next(it2)).SubscribeToShardEvent.Records, [], "resumed after the last record");
  await kinesis.send(new PutRecordsCommand({ StreamName: "sdk-fanout",
    Records: [{ PartitionKey: "d", Data: enc.encode("rec-d") }] }));
  const e2 = (await next(it2)).SubscribeToShardEvent;
  assert.deepEqual(e2.Records.map((r) => dec.decode(r.Data)), ["rec-d"]);
  await it2.return?.();
  await kinesis.send(new DeleteStreamCommand({ StreamName: "sdk-fanout", EnforceConsumerDeletion: true }));
});

test("SubscribeToShard: errors", async () => {
  await assert.rejects(kinesis.send(new SubscribeToShardCommand({
    ConsumerARN: "arn:aws:kinesis:msgq:postgres:stream/no-such-stream/consumer/x",
    ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } })), ResourceNotFoundException);
  // over HTTP/1.1 there is no event stream
  const http1 = new KinesisClient({ ...options, requestHandler: new NodeHttpHandler() });
  await assert.rejects(http1.send(new SubscribeToShardCommand({
    ConsumerARN: "arn:aws:kinesis:msgq:postgres:stream/no-such-stream/consumer/x",
    ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } })), InvalidArgumentException);
});

// a client whose connection is served by the given endpoint worker
// (test/t/024_aws_sdk.pl runs two; each answer names its worker)
async function clientOnWorker(worker) {
  for (let i = 0; i < 40; i++) {
    const c = new KinesisClient(options);
    let seen;
    c.middlewareStack.add((next) => async (args) => {
      const r = await next(args);
      seen = r.response.headers["x-msgq-endpoint-worker"];
      return r;
    }, { step: "deserialize" });
    await c.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-workers" }));
    if (seen === worker) return c;
    c.destroy();
  }
  throw new Error(`no connection reached endpoint worker ${worker}`);
}

test("SubscribeToShard across endpoint workers: refused within 5 s, then a takeover", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName: "sdk-workers", ShardCount: 1 }));
  const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-workers" }));
  const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: d.StreamARN, ConsumerName: "w" }));
  const one = await clientOnWorker("1");
  const two = await clientOnWorker("2");
  const args = { ConsumerARN: Consumer.ConsumerARN, ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } };
  const sub1 = await one.send(new SubscribeToShardCommand(args));
  const it1 = sub1.EventStream[Symbol.asyncIterator]();
  await assert.rejects(two.send(new SubscribeToShardCommand(args)), ResourceInUseException,
    "the other worker refuses it within 5 seconds");
  await sleep(5200);
  const sub2 = await two.send(new SubscribeToShardCommand(args));
  // the first worker ends its stream (after its heartbeat event, if one was due)
  let e;
  do e = await next(it1); while (e !== null);
  const it2 = sub2.EventStream[Symbol.asyncIterator]();
  await next(it2);
  await kinesis.send(new PutRecordsCommand({ StreamName: "sdk-workers",
    Records: [{ PartitionKey: "a", Data: enc.encode("only-to-the-new-one") }] }));
  let got = [];
  while (got.length === 0) got = (await next(it2)).SubscribeToShardEvent.Records;
  assert.deepEqual(got.map((r) => dec.decode(r.Data)), ["only-to-the-new-one"]);
  one.destroy();
  two.destroy();
  await kinesis.send(new DeleteStreamCommand({ StreamName: "sdk-workers" }));
});
