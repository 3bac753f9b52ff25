// msgq's AWS endpoint as Kinesis Data Streams (AWS JSON 1.1) for the
// unmodified AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis) with its
// default request handler: cleartext HTTP/2 (prior knowledge).
// test/t/024_aws_sdk.pl runs it with MSGQ_ENDPOINT, MSGQ_ACCESS_KEY_ID and
// MSGQ_SECRET_ACCESS_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  KinesisClient, CreateStreamCommand, ListStreamsCommand, DescribeStreamSummaryCommand,
  ListShardsCommand, PutRecordCommand, PutRecordsCommand, GetShardIteratorCommand,
  GetRecordsCommand, DeleteStreamCommand, ResourceNotFoundException, ResourceInUseException,
} from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

const kinesis = new KinesisClient({
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
});
const enc = new TextEncoder();

test("the client is the default one, over HTTP/2", async () => {
  assert.ok(kinesis.config.requestHandler instanceof NodeHttp2Handler);
});
const dec = new TextDecoder();

test("create, describe and list a stream", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName: "sdk-clicks", ShardCount: 2 }));
  const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-clicks" }));
  assert.equal(d.StreamName, "sdk-clicks");
  assert.equal(d.StreamStatus, "ACTIVE");
  assert.equal(d.OpenShardCount, 2);
  assert.ok(d.StreamCreationTimestamp instanceof Date);
  const { StreamNames } = await kinesis.send(new ListStreamsCommand({}));
  assert.ok(StreamNames.includes("sdk-clicks"));
  const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: "sdk-clicks" }));
  assert.deepEqual(Shards.map((s) => s.ShardId), ["shardId-000000000000", "shardId-000000000001"]);
  assert.equal(Shards[0].HashKeyRange.StartingHashKey, "0");
  await assert.rejects(kinesis.send(new CreateStreamCommand({ StreamName: "sdk-clicks", ShardCount: 1 })),
    ResourceInUseException);
});

test("put records and read them back in order, by shard", async () => {
  const one = await kinesis.send(new PutRecordCommand({ StreamName: "sdk-clicks", PartitionKey: "user-1", Data: enc.encode("first") }));
  assert.match(one.ShardId, /^shardId-/);
  assert.match(one.SequenceNumber, /^\d+$/);
  const many = await kinesis.send(new PutRecordsCommand({
    StreamName: "sdk-clicks",
    Records: [1, 2, 3, 4, 5].map((i) => ({ PartitionKey: "user-1", Data: enc.encode(`r${i}`) })),
  }));
  assert.equal(many.FailedRecordCount, 0);
  assert.equal(many.Records.length, 5);
  assert.ok(many.Records.every((r) => r.ShardId === one.ShardId));
  const { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({
    StreamName: "sdk-clicks", ShardId: one.ShardId, ShardIteratorType: "TRIM_HORIZON",
  }));
  const got = await kinesis.send(new GetRecordsCommand({ ShardIterator, Limit: 100 }));
  assert.deepEqual(got.Records.map((r) => dec.decode(r.Data)), ["first", "r1", "r2", "r3", "r4", "r5"]);
  assert.equal(got.Records[0].SequenceNumber, one.SequenceNumber);
  assert.equal(got.Records[0].PartitionKey, "user-1");
  assert.ok(got.Records[0].ApproximateArrivalTimestamp instanceof Date);
  assert.ok(got.NextShardIterator);
  const after = await kinesis.send(new GetShardIteratorCommand({
    StreamName: "sdk-clicks", ShardId: one.ShardId, ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
    StartingSequenceNumber: got.Records[3].SequenceNumber,
  }));
  const rest = await kinesis.send(new GetRecordsCommand({ ShardIterator: after.ShardIterator }));
  assert.deepEqual(rest.Records.map((r) => dec.decode(r.Data)), ["r4", "r5"]);
  const empty = await kinesis.send(new GetRecordsCommand({ ShardIterator: rest.NextShardIterator }));
  assert.deepEqual(empty.Records, []);
  assert.equal(empty.MillisBehindLatest, 0);
});

test("errors reach the SDK as Kinesis's exceptions", async () => {
  await assert.rejects(kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-none" })), (e) => {
    assert.ok(e instanceof ResourceNotFoundException);
    assert.equal(e.$metadata.httpStatusCode, 400);
    return true;
  });
  await assert.rejects(kinesis.send(new GetRecordsCommand({ ShardIterator: "forged" })),
    (e) => e.name === "InvalidArgumentException");
  await kinesis.send(new DeleteStreamCommand({ StreamName: "sdk-clicks" }));
  await assert.rejects(kinesis.send(new ListShardsCommand({ StreamName: "sdk-clicks" })), ResourceNotFoundException);
});
