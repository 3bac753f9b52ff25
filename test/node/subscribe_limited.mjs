// SubscribeToShard on a stream that enforces shard limits: a consumer reads
// at most 2 MiB per shard and second, so five records of 1,000,000 bytes
// come in several events. test/t/024_aws_sdk.pl creates the stream
// "sdk-limited" with the records and its limits on; this prints
// "got N records in E events after T ms", or an error.
import {
  KinesisClient, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand, SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";

const kinesis = new KinesisClient({
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
});
const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-limited" }));
const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: d.StreamARN, ConsumerName: "limited" }));
const t0 = Date.now();
const sub = await kinesis.send(new SubscribeToShardCommand({
  ConsumerARN: Consumer.ConsumerARN, ShardId: "shardId-000000000000", StartingPosition: { Type: "TRIM_HORIZON" } }));
let records = 0;
let events = 0;
for await (const e of sub.EventStream) {
  const n = e.SubscribeToShardEvent ? e.SubscribeToShardEvent.Records.length : 0;
  if (n > 0) events++;
  records += n;
  if (records >= 5 || Date.now() - t0 > 20000) break;
}
console.log(`got ${records} records in ${events} events after ${Date.now() - t0} ms`);
kinesis.destroy();
process.exit(0);
