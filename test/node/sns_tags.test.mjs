// SNS tags through msgq's AWS endpoint (the query protocol) with the
// unmodified @aws-sdk/client-sns: CreateTopic with Tags, TagResource,
// UntagResource, ListTagsForResource, and their errors.
// test/t/024_aws_sdk.pl runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SNSClient, CreateTopicCommand, TagResourceCommand, UntagResourceCommand, ListTagsForResourceCommand,
  DeleteTopicCommand, ResourceNotFoundException, TagLimitExceededException, InvalidParameterException,
} from "@aws-sdk/client-sns";

const sns = new SNSClient({
  endpoint: process.env.MSGQ_ENDPOINT, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: process.env.MSGQ_ACCESS_KEY_ID, secretAccessKey: process.env.MSGQ_SECRET_ACCESS_KEY },
});
const tagsOf = async (ResourceArn) =>
  (await sns.send(new ListTagsForResourceCommand({ ResourceArn }))).Tags ?? [];

test("topic tags: create with tags, add, replace, remove, list", async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: "sdk-tagged",
    Tags: [{ Key: "team", Value: "orders" }, { Key: "env", Value: "dev" }] }));
  assert.deepEqual(await tagsOf(TopicArn), [{ Key: "env", Value: "dev" }, { Key: "team", Value: "orders" }]);
  await sns.send(new TagResourceCommand({ ResourceArn: TopicArn,
    Tags: [{ Key: "env", Value: "prod" }, { Key: "cost-center", Value: "" }] }));
  assert.deepEqual(await tagsOf(TopicArn), [
    { Key: "cost-center", Value: "" }, { Key: "env", Value: "prod" }, { Key: "team", Value: "orders" }]);
  await sns.send(new UntagResourceCommand({ ResourceArn: TopicArn, TagKeys: ["team", "absent"] }));
  assert.deepEqual((await tagsOf(TopicArn)).map((t) => t.Key), ["cost-center", "env"]);

  // at most 50 tags; bad keys; an unknown topic
  await assert.rejects(sns.send(new TagResourceCommand({ ResourceArn: TopicArn,
    Tags: Array.from({ length: 49 }, (_, i) => ({ Key: `k${i}`, Value: "v" })) })), TagLimitExceededException);
  await assert.rejects(sns.send(new TagResourceCommand({ ResourceArn: TopicArn,
    Tags: [{ Key: "aws:reserved", Value: "v" }] })), InvalidParameterException);
  await assert.rejects(sns.send(new ListTagsForResourceCommand({
    ResourceArn: "arn:aws:sns:msgq:postgres:sdk-no-such-topic" })), ResourceNotFoundException);
  assert.equal((await tagsOf(TopicArn)).length, 2, "a refused call changes nothing");
  await sns.send(new DeleteTopicCommand({ TopicArn }));
});
