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
  AddPermissionCommand, RemovePermissionCommand, StartMessageMoveTaskCommand, CancelMessageMoveTaskCommand,
  ListMessageMoveTasksCommand, ResourceNotFoundException, paginateListQueues, paginateListDeadLetterSourceQueues,
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

// a second role's key (test/t/024_aws_sdk.pl makes it): no right on the first role's queues
const other = new SQSClient({ endpoint, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_OTHER_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_OTHER_SECRET_ACCESS_KEY } });

async function arn(url) {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
  return Attributes.QueueArn;
}

test("paginateListQueues: MaxResults pages with NextToken, none without MaxResults", async () => {
  const names = ["sdk-page-a", "sdk-page-b", "sdk-page-c", "sdk-page-d", "sdk-page-e"];
  for (const n of names) await queue(n);
  const pages = [];
  for await (const page of paginateListQueues({ client: sqs, pageSize: 2 }, { QueueNamePrefix: "sdk-page-" })) {
    pages.push(page.QueueUrls);
  }
  assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
  assert.deepEqual(pages.flat(), names.map((n) => `${endpoint}/postgres/${n}`));
  const exact = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: "sdk-page-", MaxResults: 5 }));
  assert.equal(exact.QueueUrls.length, 5);
  assert.equal(exact.NextToken, undefined, "no NextToken when the page holds the rest");
  const all = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: "sdk-page-" }));
  assert.equal(all.QueueUrls.length, 5);
  assert.equal(all.NextToken, undefined, "no NextToken without MaxResults, as AWS");
  await assert.rejects(sqs.send(new ListQueuesCommand({ MaxResults: 1001 })), (e) => e.name === "InvalidParameterValue");
  await assert.rejects(sqs.send(new ListQueuesCommand({ MaxResults: 0 })), (e) => e.name === "InvalidParameterValue");
  await assert.rejects(sqs.send(new ListQueuesCommand({ MaxResults: 2, NextToken: "not a token!" })),
    (e) => e.name === "InvalidParameterValue");
});

test("paginateListDeadLetterSourceQueues", async () => {
  const dlq = await queue("sdk-pdlq");
  const RedrivePolicy = JSON.stringify({ deadLetterTargetArn: await arn(dlq), maxReceiveCount: 3 });
  const sources = [];
  for (const n of ["sdk-pdlq-1", "sdk-pdlq-2", "sdk-pdlq-3"]) sources.push(await queue(n, { RedrivePolicy }));
  const pages = [];
  for await (const page of paginateListDeadLetterSourceQueues({ client: sqs, pageSize: 2 }, { QueueUrl: dlq })) {
    pages.push(page.queueUrls);
  }
  assert.deepEqual(pages, [sources.slice(0, 2), sources.slice(2)]);
});

test("AddPermission and RemovePermission: another role's rights on a queue", async () => {
  const url = await queue("sdk-shared");
  await assert.rejects(other.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x" })),
    (e) => e.name === "AccessDenied" && e.$metadata.httpStatusCode === 403);
  await sqs.send(new AddPermissionCommand({
    QueueUrl: url, Label: "others-send", AWSAccountIds: ["sdk_other"], Actions: ["SendMessage"],
  }));
  await other.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "from the other role" }));
  await assert.rejects(other.send(new ReceiveMessageCommand({ QueueUrl: url })), (e) => e.name === "AccessDenied",
    "only the action granted");
  await assert.rejects(sqs.send(new AddPermissionCommand({
    QueueUrl: url, Label: "others-send", AWSAccountIds: ["sdk_other"], Actions: ["ReceiveMessage"],
  })), (e) => e.name === "InvalidParameterValue", "a label is added once");
  await assert.rejects(sqs.send(new AddPermissionCommand({
    QueueUrl: url, Label: "bad", AWSAccountIds: ["sdk_other"], Actions: ["Frobnicate"],
  })), (e) => e.name === "InvalidParameterValue");
  await assert.rejects(other.send(new AddPermissionCommand({
    QueueUrl: url, Label: "mine", AWSAccountIds: ["sdk_other"], Actions: ["ReceiveMessage"],
  })), (e) => e.name === "AccessDenied", "only the owner grants");
  await sqs.send(new RemovePermissionCommand({ QueueUrl: url, Label: "others-send" }));
  await assert.rejects(other.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x" })),
    (e) => e.name === "AccessDenied");
  await assert.rejects(sqs.send(new RemovePermissionCommand({ QueueUrl: url, Label: "others-send" })),
    (e) => e.name === "InvalidParameterValue");
  const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }));
  assert.equal(got.Messages[0].Body, "from the other role");
});

async function until(what, f, ms = 30000) {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("message move tasks: start, list, cancel, and a task that returns the messages", async () => {
  const dlq = await queue("sdk-move-dlq");
  const SourceArn = await arn(dlq);
  const src = await queue("sdk-move-src", { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: SourceArn, maxReceiveCount: 1 }) });
  await sqs.send(new SendMessageBatchCommand({
    QueueUrl: src, Entries: [1, 2, 3, 4, 5].map((i) => ({ Id: `m${i}`, MessageBody: `poison ${i}` })),
  }));
  await sqs.send(new ReceiveMessageCommand({ QueueUrl: src, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
  assert.equal((await sqs.send(new ReceiveMessageCommand({ QueueUrl: src, MaxNumberOfMessages: 10 }))).Messages, undefined,
    "the second receive moved them to the dead-letter queue");

  const slow = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn, MaxNumberOfMessagesPerSecond: 1 }));
  assert.ok(slow.TaskHandle);
  await assert.rejects(sqs.send(new StartMessageMoveTaskCommand({ SourceArn })),
    (e) => e.name === "InvalidParameterValue", "one running task per source");
  const running = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn }));
  assert.equal(running.Results.length, 1);
  assert.equal(running.Results[0].TaskHandle, slow.TaskHandle);
  assert.equal(running.Results[0].Status, "RUNNING");
  assert.equal(running.Results[0].SourceArn, SourceArn);
  assert.equal(running.Results[0].MaxNumberOfMessagesPerSecond, 1);
  assert.ok(running.Results[0].StartedTimestamp > Date.now() - 60000);
  const cancelled = await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: slow.TaskHandle }));
  assert.equal(typeof cancelled.ApproximateNumberOfMessagesMoved, "number");
  await assert.rejects(sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: slow.TaskHandle })),
    (e) => e.name === "InvalidParameterValue", "only a running task can be cancelled");

  const fast = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn }));
  const done = await until("the move task to complete", async () => {
    const r = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn, MaxResults: 10 }));
    return r.Results[0].Status === "COMPLETED" ? r : null;
  });
  assert.deepEqual(done.Results.map((t) => t.Status), ["COMPLETED", "CANCELLED"], "newest first");
  assert.equal(done.Results[0].TaskHandle, undefined, "a finished task has no handle");
  assert.equal(done.Results[0].ApproximateNumberOfMessagesMoved + cancelled.ApproximateNumberOfMessagesMoved, 5);
  assert.ok(fast.TaskHandle !== slow.TaskHandle);
  const back = await sqs.send(new ReceiveMessageCommand({ QueueUrl: src, MaxNumberOfMessages: 10 }));
  assert.equal(back.Messages.length, 5, "every message is back in its source queue");

  await assert.rejects(sqs.send(new StartMessageMoveTaskCommand({ SourceArn: SourceArn + "-none" })),
    ResourceNotFoundException);
  await assert.rejects(sqs.send(new StartMessageMoveTaskCommand({ SourceArn: await arn(src) })),
    (e) => e.name === "InvalidParameterValue", "the source must be a dead-letter queue");
  await assert.rejects(sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: "no-such-task" })), ResourceNotFoundException);
  await assert.rejects(sqs.send(new ListMessageMoveTasksCommand({ SourceArn, MaxResults: 11 })),
    (e) => e.name === "InvalidParameterValue");
});
