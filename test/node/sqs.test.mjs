// msgq's AWS endpoint (src/endpoint.c) driven by the unmodified AWS SDK for
// JavaScript v3 (@aws-sdk/client-sqs, pinned by package-lock.json): the
// SDK signs every request (SigV4), checks the MD5s of what it sends and
// receives, and raises the named exceptions of AWS's error shapes.
// test/t/024_aws_sdk.pl starts a server with the endpoint and runs this with
// MSGQ_ENDPOINT, MSGQ_ACCESS_KEY_ID and MSGQ_SECRET_ACCESS_KEY.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, ListQueuesCommand, DeleteQueueCommand,
  SendMessageCommand, SendMessageBatchCommand, ReceiveMessageCommand, DeleteMessageCommand,
  DeleteMessageBatchCommand, ChangeMessageVisibilityCommand, GetQueueAttributesCommand,
  SetQueueAttributesCommand, PurgeQueueCommand, TagQueueCommand, ListQueueTagsCommand,
  ListDeadLetterSourceQueuesCommand, QueueDoesNotExist, ReceiptHandleIsInvalid, SQSServiceException,
} from "@aws-sdk/client-sqs";

const endpoint = process.env.MSGQ_ENDPOINT;
const credentials = {
  accessKeyId: process.env.MSGQ_ACCESS_KEY_ID,
  secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY,
};
const sqs = new SQSClient({ endpoint, region: "us-east-1", credentials, maxAttempts: 1 });

async function queue(name, Attributes = {}) {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes }));
  return QueueUrl;
}

test("create, find and list queues", async () => {
  const url = await queue("sdk-basic", { VisibilityTimeout: "30" });
  assert.equal(url, `${endpoint}/postgres/sdk-basic`);
  const got = await sqs.send(new GetQueueUrlCommand({ QueueName: "sdk-basic" }));
  assert.equal(got.QueueUrl, url);
  const list = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: "sdk-basic" }));
  assert.deepEqual(list.QueueUrls, [url]);
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }));
  assert.equal(attrs.Attributes.VisibilityTimeout, "30");
  assert.equal(attrs.Attributes.QueueArn, "arn:aws:sqs:msgq:postgres:sdk-basic");
});

test("send and receive: the SDK checks the MD5s", async () => {
  const url = await queue("sdk-send");
  const sent = await sqs.send(new SendMessageCommand({
    QueueUrl: url, MessageBody: "héllo wörld",
    MessageAttributes: { n: { DataType: "Number", StringValue: "42" }, b: { DataType: "Binary", BinaryValue: Buffer.from([1, 2, 3]) } },
  }));
  assert.match(sent.MessageId, /^[0-9a-f-]{36}$/);
  const got = await sqs.send(new ReceiveMessageCommand({
    QueueUrl: url, MessageAttributeNames: ["All"], MessageSystemAttributeNames: ["All"],
  }));
  assert.equal(got.Messages.length, 1);
  const m = got.Messages[0];
  assert.equal(m.Body, "héllo wörld");
  assert.equal(m.MessageId, sent.MessageId);
  assert.equal(m.MessageAttributes.n.StringValue, "42");
  assert.deepEqual([...m.MessageAttributes.b.BinaryValue], [1, 2, 3]);
  assert.equal(m.Attributes.ApproximateReceiveCount, "1");
  await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
  const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }));
  assert.equal(empty.Messages, undefined);
});

test("batches: partial failures in order", async () => {
  const url = await queue("sdk-batch");
  const sent = await sqs.send(new SendMessageBatchCommand({
    QueueUrl: url,
    Entries: [
      { Id: "a", MessageBody: "one" },
      { Id: "b", MessageBody: "two", DelaySeconds: 1000 },
      { Id: "c", MessageBody: "three" },
    ],
  }));
  assert.deepEqual(sent.Successful.map((e) => e.Id), ["a", "c"]);
  assert.equal(sent.Failed[0].Id, "b");
  assert.equal(sent.Failed[0].SenderFault, true);
  const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
  assert.deepEqual(got.Messages.map((m) => m.Body).sort(), ["one", "three"]);
  const del = await sqs.send(new DeleteMessageBatchCommand({
    QueueUrl: url,
    Entries: [...got.Messages.map((m, i) => ({ Id: `m${i}`, ReceiptHandle: m.ReceiptHandle })),
      { Id: "bad", ReceiptHandle: "not-a-handle" }],
  }));
  assert.equal(del.Successful.length, 2);
  assert.equal(del.Failed[0].Id, "bad");
  assert.equal(del.Failed[0].Code, "ReceiptHandleIsInvalid");
});

test("a long poll is answered by a send, not at the end of its wait", async () => {
  const url = await queue("sdk-longpoll");
  const t0 = Date.now();
  const poll = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 10 }));
  await new Promise((r) => setTimeout(r, 300));
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "wake up" }));
  const got = await poll;
  assert.equal(got.Messages[0].Body, "wake up");
  assert.ok(Date.now() - t0 < 3000, `answered after ${Date.now() - t0} ms`);
  const t1 = Date.now();
  const none = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
  assert.equal(none.Messages, undefined);
  assert.ok(Date.now() - t1 >= 900, "an empty long poll lasts its wait");
});

test("visibility: a message made visible again is received again", async () => {
  const url = await queue("sdk-visibility", { VisibilityTimeout: "60" });
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "again" }));
  const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }));
  assert.equal((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages, undefined);
  await sqs.send(new ChangeMessageVisibilityCommand({
    QueueUrl: url, ReceiptHandle: first.Messages[0].ReceiptHandle, VisibilityTimeout: 0,
  }));
  const second = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }));
  assert.equal(second.Messages[0].Body, "again");
  assert.equal(second.Messages[0].Attributes.ApproximateReceiveCount, "2");
  assert.notEqual(second.Messages[0].ReceiptHandle, first.Messages[0].ReceiptHandle);
});

test("a dead-letter queue takes a message received maxReceiveCount times", async () => {
  const dlq = await queue("sdk-dlq");
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ["QueueArn"] }));
  const src = await queue("sdk-dlq-source");
  await sqs.send(new SetQueueAttributesCommand({
    QueueUrl: src,
    Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes.QueueArn, maxReceiveCount: 2 }) },
  }));
  const sources = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }));
  assert.deepEqual(sources.queueUrls, [src]);
  await sqs.send(new SendMessageCommand({ QueueUrl: src, MessageBody: "poison" }));
  for (let i = 0; i < 2; i++) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: src }));
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: src, ReceiptHandle: got.Messages[0].ReceiptHandle, VisibilityTimeout: 0 }));
  }
  assert.equal((await sqs.send(new ReceiveMessageCommand({ QueueUrl: src }))).Messages, undefined);
  const moved = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq }));
  assert.equal(moved.Messages[0].Body, "poison");
});

test("tags, purge and delete", async () => {
  const url = await queue("sdk-admin");
  await sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: { team: "billing" } }));
  assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { team: "billing" });
  await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x" }));
  await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
  assert.equal((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages, undefined);
  await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
  await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: "sdk-admin" })), QueueDoesNotExist);
});

test("errors reach the SDK as AWS's exceptions", async () => {
  await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: "sdk-none" })), (e) => {
    assert.ok(e instanceof QueueDoesNotExist);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.Code, "AWS.SimpleQueueService.NonExistentQueue");
    return true;
  });
  const url = await queue("sdk-errors");
  await assert.rejects(sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: "forged" })),
    ReceiptHandleIsInvalid);
  await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x", DelaySeconds: 901 })),
    (e) => e instanceof SQSServiceException && e.name === "InvalidParameterValue");
  const bad = new SQSClient({ endpoint, region: "us-east-1", maxAttempts: 1,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: "wrong" } });
  await assert.rejects(bad.send(new ListQueuesCommand({})), (e) => {
    assert.equal(e.name, "SignatureDoesNotMatch");
    assert.equal(e.$metadata.httpStatusCode, 403);
    return true;
  });
});
