// A SubscribeToShard event stream ends after five minutes of msgq's clock:
// prints "subscribed" once the stream is open, then "ended after N events"
// when the endpoint ends it. test/t/024_aws_sdk.pl moves msgq.clock_offset
// in between.
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  SubscribeToShardCommand, DeleteStreamCommand,
} from "@aws-sdk/client-kinesis";

const kinesis = new KinesisClient({
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
});
await kinesis.send(new CreateStreamCommand({ StreamName: "sdk-ending", ShardCount: 1 }));
const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "sdk-ending" }));
const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: d.StreamARN, ConsumerName: "ending" }));
const sub = await kinesis.send(new SubscribeToShardCommand({
  ConsumerARN: Consumer.ConsumerARN, ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } }));
console.log("subscribed");
let n = 0;
for await (const e of sub.EventStream) {
  if (e.SubscribeToShardEvent) n++;
}
console.log(`ended after ${n} events`);
await kinesis.send(new DeleteStreamCommand({ StreamName: "sdk-ending" }));
kinesis.destroy();
