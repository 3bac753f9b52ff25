// msgq's AWS endpoint as SNS (the query protocol: form-encoded requests,
// XML replies) for the unmodified AWS SDK for JavaScript v3
// (@aws-sdk/client-sns): topics, subscriptions of queues with a filter
// policy, publish, and the errors as SNS's exceptions.
// test/t/024_aws_sdk.pl runs it with MSGQ_ENDPOINT, MSGQ_ACCESS_KEY_ID and
// MSGQ_SECRET_ACCESS_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SNSClient, CreateTopicCommand, ListTopicsCommand, GetTopicAttributesCommand, SetTopicAttributesCommand,
  SubscribeCommand, ListSubscriptionsByTopicCommand, SetSubscriptionAttributesCommand,
  GetSubscriptionAttributesCommand, PublishCommand, PublishBatchCommand, UnsubscribeCommand, DeleteTopicCommand,
  NotFoundException,
} from "@aws-sdk/client-sns";
import { SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";

const config = {
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
};
const sns = new SNSClient(config);
const sqs = new SQSClient(config);

test("topics, a queue subscribed with a filter policy, publish", async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-orders", Attributes: { DisplayName: "Orders" } }));
  assert.match(TopicArn, /^arn:aws:sns:msgq:postgres:sdk-orders$/);
  const { Topics } = await sns.send(new ListTopicsCommand({}));
  assert.ok(Topics.some((t) => t.TopicArn === TopicArn));
  await sns.send(new SetTopicAttributesCommand({ TopicArn, AttributeName: "DisplayName", AttributeValue: "Orders & co" }));
  const { Attributes } = await sns.send(new GetTopicAttributesCommand({ TopicArn }));
  assert.equal(Attributes.DisplayName, "Orders & co");
  assert.equal(Attributes.TopicArn, TopicArn);

  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "sdk-order-events" }));
  const q = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
  const { SubscriptionArn } = await sns.send(new SubscribeCommand({
    TopicArn, Protocol: "sqs", Endpoint: q.Attributes.QueueArn, Attributes: { RawMessageDelivery: "true" },
  }));
  assert.ok(SubscriptionArn.startsWith(TopicArn + ":"));
  await sns.send(new SetSubscriptionAttributesCommand({
    SubscriptionArn, AttributeName: "FilterPolicy", AttributeValue: JSON.stringify({ kind: ["paid"] }),
  }));
  const sub = await sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn }));
  assert.equal(sub.Attributes.RawMessageDelivery, "true");
  assert.deepEqual(JSON.parse(sub.Attributes.FilterPolicy), { kind: ["paid"] });
  const { Subscriptions } = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
  assert.deepEqual(Subscriptions.map((s) => [s.Protocol, s.Endpoint]), [["sqs", q.Attributes.QueueArn]]);

  const paid = await sns.send(new PublishCommand({
    TopicArn, Message: "order 1 paid",
    MessageAttributes: { kind: { DataType: "String", StringValue: "paid" } },
  }));
  assert.match(paid.MessageId, /^[0-9a-f-]{36}$/);
  await sns.send(new PublishCommand({
    TopicArn, Message: "order 2 created",
    MessageAttributes: { kind: { DataType: "String", StringValue: "created" } },
  }));
  const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
  assert.deepEqual(got.Messages.map((m) => m.Body), ["order 1 paid"], "the filter policy let only the paid one through");

  await sns.send(new UnsubscribeCommand({ SubscriptionArn }));
  await sns.send(new DeleteTopicCommand({ TopicArn }));
});

test("errors reach the SDK as SNS's exceptions", async () => {
  await assert.rejects(sns.send(new PublishCommand({ TopicArn: "arn:aws:sns:msgq:postgres:sdk-none", Message: "x" })),
    (e) => {
      assert.ok(e instanceof NotFoundException, `${e.name}`);
      assert.equal(e.$metadata.httpStatusCode, 404);
      return true;
    });
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-errors" }));
  await assert.rejects(sns.send(new PublishCommand({ TopicArn, Message: "" })),
    (e) => e.name === "InvalidParameterException" || e.name === "InvalidParameter");
});

test("PublishBatch: partial failures in order", async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-batch" }));
  const r = await sns.send(new PublishBatchCommand({
    TopicArn,
    PublishBatchRequestEntries: [
      { Id: "a", Message: "one" },
      { Id: "b", Message: "" },
      { Id: "c", Message: "three", Subject: "s" },
    ],
  }));
  assert.deepEqual(r.Successful.map((e) => e.Id), ["a", "c"]);
  assert.match(r.Successful[0].MessageId, /^[0-9a-f-]{36}$/);
  assert.equal(r.Failed[0].Id, "b");
  assert.equal(r.Failed[0].SenderFault, true);
});

test("PublishBatch: each entry's message attributes reach the filter policy and the queue", async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-batch-attrs" }));
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "sdk-batch-attrs" }));
  const q = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
  await sns.send(new SubscribeCommand({
    TopicArn, Protocol: "sqs", Endpoint: q.Attributes.QueueArn,
    Attributes: { RawMessageDelivery: "true", FilterPolicy: JSON.stringify({ kind: ["keep"] }) },
  }));
  const r = await sns.send(new PublishBatchCommand({
    TopicArn,
    PublishBatchRequestEntries: [
      { Id: "k1", Message: "kept", MessageAttributes: {
        kind: { DataType: "String", StringValue: "keep" }, n: { DataType: "Number", StringValue: "7" } } },
      { Id: "d1", Message: "dropped", MessageAttributes: { kind: { DataType: "String", StringValue: "drop" } } },
      { Id: "p1", Message: "plain" },
    ],
  }));
  assert.deepEqual(r.Successful.map((e) => e.Id), ["k1", "d1", "p1"]);
  const got = await sqs.send(new ReceiveMessageCommand({
    QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], WaitTimeSeconds: 1 }));
  assert.deepEqual(got.Messages.map((m) => m.Body), ["kept"], "only the entry whose attributes match");
  assert.equal(got.Messages[0].MessageAttributes.kind.StringValue, "keep");
  assert.equal(got.Messages[0].MessageAttributes.n.StringValue, "7");
  assert.equal(got.Messages[0].MessageAttributes.n.DataType, "Number");
});
