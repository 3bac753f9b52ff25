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
  NotFoundException, ConfirmSubscriptionCommand, AddPermissionCommand, RemovePermissionCommand,
  ListSubscriptionsCommand, paginateListTopics, paginateListSubscriptions,
} from "@aws-sdk/client-sns";
import { createServer } from "node:http";
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

test("paginateListTopics and paginateListSubscriptions: 100 a page, with NextToken", async () => {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "sdk-topic-pages" }));
  const q = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
  const mine = [];
  for (let i = 0; i < 101; i++) {
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `sdk-page-${String(i).padStart(3, "0")}` }));
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: "sqs", Endpoint: q.Attributes.QueueArn }));
    mine.push(TopicArn);
  }
  const pages = [];
  for await (const page of paginateListTopics({ client: sns }, {})) pages.push(page.Topics.map((t) => t.TopicArn));
  assert.ok(pages.length >= 2, `${pages.length} pages`);
  assert.equal(pages[0].length, 100, "the first page holds 100");
  const all = pages.flat();
  assert.equal(new Set(all).size, all.length, "no topic twice");
  assert.ok(mine.every((t) => all.includes(t)), "every topic on some page");

  const first = await sns.send(new ListSubscriptionsCommand({}));
  assert.equal(first.Subscriptions.length, 100);
  assert.ok(first.NextToken);
  const subs = [];
  for await (const page of paginateListSubscriptions({ client: sns }, {})) subs.push(...page.Subscriptions);
  const arns = subs.filter((s) => s.Endpoint === q.Attributes.QueueArn).map((s) => s.TopicArn);
  assert.deepEqual(arns.sort(), [...mine].sort(), "each topic's subscription once");
  await assert.rejects(sns.send(new ListTopicsCommand({ NextToken: "garbage!" })),
    (e) => e.name === "InvalidParameterException" && e.$metadata.httpStatusCode === 400);
  for (const TopicArn of mine) await sns.send(new DeleteTopicCommand({ TopicArn }));
});

test("ConfirmSubscription: an http endpoint confirms with the token it was sent", async () => {
  const got = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", () => { got.push({ type: req.headers["x-amz-sns-message-type"], doc: JSON.parse(body) }); res.end(); });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  try {
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-confirm" }));
    const Endpoint = `http://127.0.0.1:${server.address().port}/hook`;
    const sub = await sns.send(new SubscribeCommand({ TopicArn, Protocol: "http", Endpoint }));
    assert.equal(sub.SubscriptionArn, "pending confirmation");
    const t0 = Date.now();
    while (!got.some((m) => m.type === "SubscriptionConfirmation") && Date.now() - t0 < 30000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const confirmation = got.find((m) => m.type === "SubscriptionConfirmation");
    assert.ok(confirmation, "the endpoint got a SubscriptionConfirmation");
    await assert.rejects(sns.send(new ConfirmSubscriptionCommand({ TopicArn, Token: "forged" })),
      (e) => e.name === "InvalidParameterException");
    await assert.rejects(sns.send(new ConfirmSubscriptionCommand({
      TopicArn, Token: confirmation.doc.Token, AuthenticateOnUnsubscribe: "perhaps",
    })), (e) => e.name === "InvalidParameterException");
    const { SubscriptionArn } = await sns.send(new ConfirmSubscriptionCommand({
      TopicArn, Token: confirmation.doc.Token, AuthenticateOnUnsubscribe: "true",
    }));
    assert.ok(SubscriptionArn.startsWith(TopicArn + ":"), SubscriptionArn);
    const { Subscriptions } = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
    assert.deepEqual(Subscriptions.map((s) => [s.SubscriptionArn, s.Endpoint]), [[SubscriptionArn, Endpoint]]);
    await sns.send(new PublishCommand({ TopicArn, Message: "now delivered" }));
    while (!got.some((m) => m.type === "Notification") && Date.now() - t0 < 30000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got.find((m) => m.type === "Notification")?.doc.Message, "now delivered");
    await sns.send(new DeleteTopicCommand({ TopicArn }));
  } finally {
    server.close();
  }
});

test("AddPermission and RemovePermission on a topic", async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-perm" }));
  const other = new SNSClient({ ...config,
    credentials: { accessKeyId: process.env.MSGQ_OTHER_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_OTHER_SECRET_ACCESS_KEY } });
  await assert.rejects(other.send(new PublishCommand({ TopicArn, Message: "x" })),
    (e) => e.name === "AuthorizationErrorException" && e.$metadata.httpStatusCode === 403);
  await sns.send(new AddPermissionCommand({ TopicArn, Label: "pub", AWSAccountId: ["sdk_other"], ActionName: ["Publish"] }));
  await other.send(new PublishCommand({ TopicArn, Message: "allowed now" }));
  await assert.rejects(sns.send(new AddPermissionCommand({ TopicArn, Label: "pub", AWSAccountId: ["sdk_other"], ActionName: ["Publish"] })),
    (e) => e.name === "InvalidParameterException");
  await sns.send(new RemovePermissionCommand({ TopicArn, Label: "pub" }));
  await assert.rejects(other.send(new PublishCommand({ TopicArn, Message: "x" })), (e) => e.name === "AuthorizationErrorException");
  await assert.rejects(sns.send(new RemovePermissionCommand({ TopicArn, Label: "pub" })), (e) => e.name === "InvalidParameterException");
  await sns.send(new DeleteTopicCommand({ TopicArn }));
});
