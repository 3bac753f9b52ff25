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
  DescribeStreamCommand, IncreaseStreamRetentionPeriodCommand, DecreaseStreamRetentionPeriodCommand,
  UpdateShardCountCommand, UpdateStreamModeCommand, RegisterStreamConsumerCommand, DeregisterStreamConsumerCommand,
  DescribeStreamConsumerCommand, ListStreamConsumersCommand, InvalidArgumentException, ValidationException,
  paginateListStreams, paginateListStreamConsumers, waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler, NodeHttpHandler } from "@smithy/node-http-handler";

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

// PutRecords of 5 MB of data (base64 makes it 6.7 MB of JSON). Four such
// requests at once on the one HTTP/2 connection of the default client send
// 26.7 MB of bodies together: flow control holds the later streams back while
// the first ones finish, and none is refused. Then one of 10 MB (Kinesis's
// limit, 13.3 MB of JSON) over HTTP/1.1, and one over the limit.
test("PutRecords of 5 MB, four at once on one HTTP/2 connection, and over HTTP/1.1", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName: "sdk-large", ShardCount: 1 }));
  const record = (req, i) => new Uint8Array(1000000).fill(req * 10 + i);
  const put = (client, req) => client.send(new PutRecordsCommand({
    StreamName: "sdk-large",
    Records: [0, 1, 2, 3, 4].map((i) => ({ PartitionKey: `k${req}-${i}`, Data: record(req, i) })),
  }));
  const answers = await Promise.all([0, 1, 2, 3].map((req) => put(kinesis, req)));
  for (const a of answers) {
    assert.equal(a.FailedRecordCount, 0);
    assert.equal(a.Records.length, 5);
  }
  const http1 = new KinesisClient({
    endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
    requestHandler: new NodeHttpHandler(),
    credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
  });
  const last = await http1.send(new PutRecordsCommand({
    StreamName: "sdk-large",
    Records: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => ({ PartitionKey: `k4-${i}`, Data: record(4, i) })),
  }));
  assert.equal(last.FailedRecordCount, 0);
  // over the limit: Kinesis's own refusal, not the endpoint's 413
  await assert.rejects(http1.send(new PutRecordsCommand({
    StreamName: "sdk-large",
    Records: Array.from({ length: 11 }, (_, i) => ({ PartitionKey: `over-${i}`, Data: record(9, i) })),
  })), (e) => e instanceof InvalidArgumentException && e.$metadata.httpStatusCode === 400);
  // every record is there, whole
  const seen = new Map();
  let { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({
    StreamName: "sdk-large", ShardId: "shardId-000000000000", ShardIteratorType: "TRIM_HORIZON",
  }));
  while (seen.size < 30) {
    const got = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
    for (const r of got.Records) seen.set(r.PartitionKey, r.Data);
    if (got.Records.length === 0) break;
    ShardIterator = got.NextShardIterator;
  }
  assert.equal(seen.size, 30);
  for (let req = 0; req < 5; req++)
    for (let i = 0; i < (req < 4 ? 5 : 10); i++) {
      const d = seen.get(`k${req}-${i}`);
      assert.equal(d.length, 1000000);
      assert.ok(d.every((b) => b === req * 10 + i), `record k${req}-${i} came back whole`);
    }
  await kinesis.send(new DeleteStreamCommand({ StreamName: "sdk-large" }));
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

const ids = (shards) => shards.map((s) => s.ShardId);
const shardIds = (n) => Array.from({ length: n }, (_, i) => `shardId-${String(i).padStart(12, "0")}`);

test("paginateListStreams: Limit pages with NextToken and HasMoreStreams, StreamSummaries", async () => {
  const mine = ["sdk-ps-a", "sdk-ps-b", "sdk-ps-c", "sdk-ps-d", "sdk-ps-e"];
  for (const StreamName of mine) await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
  const pages = [];
  for await (const page of paginateListStreams({ client: kinesis, pageSize: 2 }, {})) pages.push(page);
  assert.ok(pages.length >= 3, `${pages.length} pages`);
  assert.ok(pages.slice(0, -1).every((p) => p.StreamNames.length === 2 && p.HasMoreStreams && p.NextToken));
  assert.equal(pages.at(-1).HasMoreStreams, false);
  assert.equal(pages.at(-1).NextToken, undefined);
  const names = pages.flatMap((p) => p.StreamNames);
  assert.equal(new Set(names).size, names.length, "no stream twice");
  assert.ok(mine.every((n) => names.includes(n)));
  const summary = pages.flatMap((p) => p.StreamSummaries).find((s) => s.StreamName === "sdk-ps-c");
  assert.equal(summary.StreamARN, "arn:aws:kinesis:msgq:postgres:stream/sdk-ps-c");
  assert.equal(summary.StreamStatus, "ACTIVE");
  assert.equal(summary.StreamModeDetails.StreamMode, "PROVISIONED");
  assert.ok(summary.StreamCreationTimestamp instanceof Date);
  const after = await kinesis.send(new ListStreamsCommand({ ExclusiveStartStreamName: "sdk-ps-c", Limit: 1 }));
  assert.deepEqual(after.StreamNames, ["sdk-ps-d"]);
  assert.equal(after.HasMoreStreams, true);
  await assert.rejects(kinesis.send(new ListStreamsCommand({ Limit: 0 })), InvalidArgumentException);
  await assert.rejects(kinesis.send(new ListStreamsCommand({ NextToken: "forged" })), InvalidArgumentException);
  await assert.rejects(kinesis.send(new ListStreamsCommand({ NextToken: pages[0].NextToken, ExclusiveStartStreamName: "a" })),
    InvalidArgumentException);
  for (const StreamName of mine) await kinesis.send(new DeleteStreamCommand({ StreamName }));
});

test("ListShards pages with MaxResults and NextToken; DescribeStream with Limit and HasMoreShards", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName: "sdk-shards", ShardCount: 5 }));
  await waitUntilStreamExists({ client: kinesis, maxWaitTime: 30 }, { StreamName: "sdk-shards" });
  const seen = [];
  let page = await kinesis.send(new ListShardsCommand({ StreamName: "sdk-shards", MaxResults: 2 }));
  for (;;) {
    seen.push(ids(page.Shards));
    if (!page.NextToken) break;
    page = await kinesis.send(new ListShardsCommand({ NextToken: page.NextToken, MaxResults: 2 }));
  }
  assert.deepEqual(seen, [shardIds(2), shardIds(4).slice(2), shardIds(5).slice(4)]);
  const first = await kinesis.send(new ListShardsCommand({ StreamName: "sdk-shards", MaxResults: 2 }));
  await assert.rejects(kinesis.send(new ListShardsCommand({ StreamName: "sdk-shards", NextToken: first.NextToken })),
    InvalidArgumentException, "NextToken with StreamName, as AWS refuses");
  await assert.rejects(kinesis.send(new ListShardsCommand({ NextToken: "forged" })), InvalidArgumentException);
  await assert.rejects(kinesis.send(new ListShardsCommand({ StreamName: "sdk-shards", MaxResults: 10001 })),
    InvalidArgumentException);
  const byArn = await kinesis.send(new ListShardsCommand({ StreamARN: "arn:aws:kinesis:msgq:postgres:stream/sdk-shards" }));
  assert.deepEqual(ids(byArn.Shards), shardIds(5));
  assert.equal(byArn.NextToken, undefined);

  const described = [];
  let d = (await kinesis.send(new DescribeStreamCommand({ StreamName: "sdk-shards", Limit: 3 }))).StreamDescription;
  assert.equal(d.StreamName, "sdk-shards");
  assert.equal(d.StreamARN, "arn:aws:kinesis:msgq:postgres:stream/sdk-shards");
  assert.equal(d.StreamStatus, "ACTIVE");
  assert.equal(d.RetentionPeriodHours, 24);
  assert.ok(d.StreamCreationTimestamp instanceof Date);
  for (;;) {
    described.push(...ids(d.Shards));
    if (!d.HasMoreShards) break;
    d = (await kinesis.send(new DescribeStreamCommand({
      StreamName: "sdk-shards", Limit: 3, ExclusiveStartShardId: described.at(-1),
    }))).StreamDescription;
  }
  assert.deepEqual(described, shardIds(5));
  await assert.rejects(kinesis.send(new DescribeStreamCommand({ StreamName: "sdk-none" })), ResourceNotFoundException);
});

test("retention, UpdateShardCount and UpdateStreamMode", async () => {
  const StreamARN = "arn:aws:kinesis:msgq:postgres:stream/sdk-shards";
  const retention = async () =>
    (await kinesis.send(new DescribeStreamSummaryCommand({ StreamARN }))).StreamDescriptionSummary.RetentionPeriodHours;
  await kinesis.send(new IncreaseStreamRetentionPeriodCommand({ StreamARN, RetentionPeriodHours: 48 }));
  assert.equal(await retention(), 48);
  await assert.rejects(kinesis.send(new IncreaseStreamRetentionPeriodCommand({ StreamARN, RetentionPeriodHours: 24 })),
    InvalidArgumentException, "an increase must increase");
  await kinesis.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: "sdk-shards", RetentionPeriodHours: 24 }));
  assert.equal(await retention(), 24);
  await assert.rejects(kinesis.send(new DecreaseStreamRetentionPeriodCommand({ StreamARN, RetentionPeriodHours: 12 })),
    InvalidArgumentException);

  const scaled = await kinesis.send(new UpdateShardCountCommand({
    StreamARN, TargetShardCount: 10, ScalingType: "UNIFORM_SCALING",
  }));
  assert.deepEqual([scaled.StreamName, scaled.StreamARN, scaled.CurrentShardCount, scaled.TargetShardCount],
    ["sdk-shards", StreamARN, 5, 10]);
  const open = await kinesis.send(new ListShardsCommand({ StreamARN, ShardFilter: { Type: "AT_LATEST" } }));
  assert.equal(open.Shards.length, 10);
  assert.ok(open.Shards.every((s) => s.ParentShardId), "the new shards name their parents");
  await assert.rejects(kinesis.send(new UpdateShardCountCommand({
    StreamARN, TargetShardCount: 30, ScalingType: "UNIFORM_SCALING",
  })), InvalidArgumentException, "at most double");

  await kinesis.send(new UpdateStreamModeCommand({ StreamARN, StreamModeDetails: { StreamMode: "ON_DEMAND" } }));
  const { StreamDescriptionSummary: s } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamARN }));
  assert.equal(s.StreamModeDetails.StreamMode, "ON_DEMAND");
  await assert.rejects(kinesis.send(new UpdateShardCountCommand({
    StreamARN, TargetShardCount: 5, ScalingType: "UNIFORM_SCALING",
  })), ValidationException, "an on-demand stream is not resharded by hand");
  await assert.rejects(kinesis.send(new UpdateStreamModeCommand({ StreamARN, StreamModeDetails: { StreamMode: "ON_DEMAND" } })),
    ResourceInUseException);
});

test("stream consumers: register, list by pages, describe, deregister", async () => {
  const StreamARN = "arn:aws:kinesis:msgq:postgres:stream/sdk-shards";
  const made = [];
  for (const ConsumerName of ["sdk-c1", "sdk-c2", "sdk-c3"]) {
    const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName }));
    assert.equal(Consumer.ConsumerName, ConsumerName);
    assert.equal(Consumer.ConsumerARN, `${StreamARN}/consumer/${ConsumerName}`);
    assert.equal(Consumer.ConsumerStatus, "ACTIVE");
    assert.ok(Consumer.ConsumerCreationTimestamp instanceof Date);
    made.push(Consumer);
  }
  await assert.rejects(kinesis.send(new RegisterStreamConsumerCommand({ StreamARN, ConsumerName: "sdk-c1" })),
    ResourceInUseException);
  const pages = [];
  for await (const page of paginateListStreamConsumers({ client: kinesis, pageSize: 2 }, { StreamARN })) {
    pages.push(page.Consumers.map((c) => c.ConsumerName));
  }
  assert.deepEqual(pages, [["sdk-c1", "sdk-c2"], ["sdk-c3"]]);
  const byArn = await kinesis.send(new DescribeStreamConsumerCommand({ ConsumerARN: made[1].ConsumerARN }));
  assert.equal(byArn.ConsumerDescription.ConsumerName, "sdk-c2");
  assert.equal(byArn.ConsumerDescription.StreamARN, StreamARN);
  assert.equal(byArn.ConsumerDescription.ConsumerStatus, "ACTIVE");
  const byName = await kinesis.send(new DescribeStreamConsumerCommand({ StreamARN, ConsumerName: "sdk-c2" }));
  assert.equal(byName.ConsumerDescription.ConsumerARN, made[1].ConsumerARN);
  await kinesis.send(new DeregisterStreamConsumerCommand({ ConsumerARN: made[1].ConsumerARN }));
  await kinesis.send(new DeregisterStreamConsumerCommand({ StreamARN, ConsumerName: "sdk-c3" }));
  await assert.rejects(kinesis.send(new DescribeStreamConsumerCommand({ ConsumerARN: made[1].ConsumerARN })),
    ResourceNotFoundException);
  await assert.rejects(kinesis.send(new DeregisterStreamConsumerCommand({ StreamARN, ConsumerName: "sdk-c3" })),
    ResourceNotFoundException);
  const left = await kinesis.send(new ListStreamConsumersCommand({ StreamARN }));
  assert.deepEqual(left.Consumers.map((c) => c.ConsumerName), ["sdk-c1"]);
  await assert.rejects(kinesis.send(new ListStreamConsumersCommand({ StreamARN, MaxResults: 0 })), InvalidArgumentException);
  await kinesis.send(new DeleteStreamCommand({ StreamARN }));
});
