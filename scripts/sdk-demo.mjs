// make demo, step 23: one message through the AWS SDK for JavaScript v3 (the
// SDK test/node's package-lock.json pins), to msgq's AWS endpoint; then a
// Kinesis stream with the Kinesis client's default HTTP/2 handler: a
// consumer subscribes to its shard (SubscribeToShard's event stream) and
// gets a record the moment its put commits.
import { createRequire } from "node:module";

const require = createRequire(new URL("../test/node/package.json", import.meta.url));
const { SQSClient, SendMessageCommand, ReceiveMessageCommand, DeleteMessageCommand } = require("@aws-sdk/client-sqs");
const {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, RegisterStreamConsumerCommand,
  SubscribeToShardCommand, PutRecordCommand, DeleteStreamCommand,
} = require("@aws-sdk/client-kinesis");

const [endpoint, accessKeyId, secretAccessKey, QueueUrl] = process.argv.slice(2);
const config = { endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } };
const sqs = new SQSClient(config);
const sent = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "sent by the AWS SDK" }));
console.log(`SendMessage: MessageId ${sent.MessageId}, MD5 checked by the SDK`);
const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5 }));
console.log(`ReceiveMessage: ${JSON.stringify(Messages.map((m) => m.Body))}`);
await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0].ReceiptHandle }));
console.log("DeleteMessage: done");

const kinesis = new KinesisClient(config);    // its default handler: HTTP/2
const StreamName = "sdk-clicks";
await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
const { StreamDescriptionSummary: d } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName }));
const { Consumer } = await kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: d.StreamARN, ConsumerName: "demo" }));
console.log(`Kinesis over HTTP/2: CreateStream ${StreamName}, RegisterStreamConsumer ${Consumer.ConsumerARN}`);
const sub = await kinesis.send(new SubscribeToShardCommand({
  ConsumerARN: Consumer.ConsumerARN, ShardId: "shardId-000000000000", StartingPosition: { Type: "LATEST" } }));
const t0 = performance.now();
await kinesis.send(new PutRecordCommand({ StreamName, PartitionKey: "user-1", Data: new TextEncoder().encode("a click") }));
for await (const e of sub.EventStream) {
  const records = e.SubscribeToShardEvent?.Records ?? [];
  if (records.length > 0) {
    console.log(`SubscribeToShard: ${JSON.stringify(records.map((r) => new TextDecoder().decode(r.Data)))} ` +
      `pushed ${(performance.now() - t0).toFixed(1)} ms after the put was sent`);
    break;
  }
}
await kinesis.send(new DeleteStreamCommand({ StreamName, EnforceConsumerDeletion: true }));
kinesis.destroy();
