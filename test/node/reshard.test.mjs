// Kinesis resharding through msgq's AWS endpoint with the unmodified
// @aws-sdk/client-kinesis: SplitShard and MergeShards close shards and add
// children (ListShards shows the lineage); reading a closed parent to its
// end gives its ChildShards and no NextShardIterator; records put after a
// split land in the children; a subscription to a shard that splits ends
// with the ChildShards. test/t/024_aws_sdk.pl runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  KinesisClient, CreateStreamCommand, ListShardsCommand, PutRecordCommand, SplitShardCommand,
  MergeShardsCommand, GetShardIteratorCommand, GetRecordsCommand, DeleteStreamCommand,
  InvalidArgumentException, ResourceNotFoundException, DescribeStreamSummaryCommand,
  RegisterStreamConsumerCommand, SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";

const kinesis = new KinesisClient({
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
});
const enc = new TextEncoder();
const dec = new TextDecoder();
const StreamName = "sdk-reshard";
const HALF = (2n ** 127n).toString();

async function readAll(ShardId) {
  const { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({
    StreamName, ShardId, ShardIteratorType: "TRIM_HORIZON" }));
  const r = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
  return r;
}

test("SplitShard, then MergeShards, through the SDK", async () => {
  await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
  const parent = "shardId-000000000000";
  await kinesis.send(new PutRecordCommand({ StreamName, PartitionKey: "before", Data: enc.encode("before") }));
  await assert.rejects(kinesis.send(new SplitShardCommand({ StreamName, ShardToSplit: "shardId-000000000009",
    NewStartingHashKey: HALF })), ResourceNotFoundException);
  await assert.rejects(kinesis.send(new SplitShardCommand({ StreamName, ShardToSplit: parent,
    NewStartingHashKey: "0" })), InvalidArgumentException);
  await kinesis.send(new SplitShardCommand({ StreamName, ShardToSplit: parent, NewStartingHashKey: HALF }));

  const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName }));
  assert.equal(Shards.length, 3);
  const children = Shards.filter((s) => s.ParentShardId === parent);
  assert.equal(children.length, 2);
  assert.ok(Shards.find((s) => s.ShardId === parent).SequenceNumberRange.EndingSequenceNumber, "the parent is closed");
  assert.deepEqual(children.map((c) => c.HashKeyRange.StartingHashKey).sort(), ["0", HALF].sort());

  // the closed parent, read to its end: its record, its children, no next iterator
  const r = await readAll(parent);
  assert.deepEqual(r.Records.map((x) => dec.decode(x.Data)), ["before"]);
  assert.equal(r.NextShardIterator, undefined);
  assert.deepEqual(r.ChildShards.map((c) => c.ShardId).sort(), children.map((c) => c.ShardId).sort());

  // a put after the split lands in the child that owns its hash key
  const low = await kinesis.send(new PutRecordCommand({ StreamName, PartitionKey: "x", ExplicitHashKey: "1",
    Data: enc.encode("low") }));
  const lowChild = children.find((c) => c.HashKeyRange.StartingHashKey === "0").ShardId;
  assert.equal(low.ShardId, lowChild);
  assert.ok(BigInt(low.SequenceNumber) > BigInt(r.Records[0].SequenceNumber), "children's numbers are greater");
  assert.deepEqual((await readAll(lowChild)).Records.map((x) => dec.decode(x.Data)), ["low"]);

  // the two children merge back into one shard
  const [a, b] = children.sort((x, y) => (BigInt(x.HashKeyRange.StartingHashKey) < BigInt(y.HashKeyRange.StartingHashKey) ? -1 : 1));
  await kinesis.send(new MergeShardsCommand({ StreamName, ShardToMerge: a.ShardId, AdjacentShardToMerge: b.ShardId }));
  const after = (await kinesis.send(new ListShardsCommand({ StreamName }))).Shards;
  const merged = after.find((s) => s.ParentShardId === a.ShardId && s.AdjacentParentShardId === b.ShardId);
  assert.ok(merged, "the merged shard names both parents");
  assert.equal(merged.HashKeyRange.StartingHashKey, "0");
  await kinesis.send(new DeleteStreamCommand({ StreamName }));
});

test("SubscribeToShard: a shard split during the subscription ends it with ChildShards", async () => {
  const name = "sdk-reshard-sub";
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
  const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
  const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: d.StreamARN, ConsumerName: "kcl" }));
  const parent = "shardId-000000000000";
  const sub = await kinesis.send(new SubscribeToShardCommand({
    ConsumerARN: Consumer.ConsumerARN, ShardId: parent, StartingPosition: { Type: "TRIM_HORIZON" } }));
  await kinesis.send(new PutRecordCommand({ StreamName: name, PartitionKey: "k", Data: enc.encode("last in the parent") }));
  await kinesis.send(new SplitShardCommand({ StreamName: name, ShardToSplit: parent, NewStartingHashKey: HALF }));
  const got = [];
  let children;
  const t0 = Date.now();
  for await (const e of sub.EventStream) {
    const ev = e.SubscribeToShardEvent;
    got.push(...ev.Records.map((r) => dec.decode(r.Data)));
    if (ev.ChildShards) children = ev.ChildShards;
  }
  assert.ok(Date.now() - t0 < 4000, "ended at the split, not at a heartbeat or after five minutes");
  assert.deepEqual(got, ["last in the parent"]);
  assert.equal(children.length, 2);
  for (const c of children) assert.deepEqual(c.ParentShards, [parent]);
  assert.deepEqual(children.map((c) => c.HashKeyRange.StartingHashKey).sort(), ["0", HALF].sort());
  await kinesis.send(new DeleteStreamCommand({ StreamName: name, EnforceConsumerDeletion: true }));
});
