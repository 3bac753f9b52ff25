"""msgq's AWS endpoint under boto3 from Debian (python3-boto3): a second,
independent AWS client.  This botocore speaks SQS's older query protocol
(form-encoded, XML replies), SNS's query protocol and Kinesis's JSON 1.1,
signs with SigV4 and checks the MD5s of SQS bodies.
test/t/025_boto3.pl runs it with MSGQ_ENDPOINT, MSGQ_ACCESS_KEY_ID and
MSGQ_SECRET_ACCESS_KEY."""
import json
import os
import time

import boto3
import botocore.exceptions
import pytest

ENDPOINT = os.environ["MSGQ_ENDPOINT"]


def client(service, secret=None):
    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id=os.environ["MSGQ_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["MSGQ_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"max_attempts": 1}))


sqs = client("sqs")
sns = client("sns")
kinesis = client("kinesis")


def test_queues_send_receive_delete():
    url = sqs.create_queue(QueueName="boto-q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    assert url.endswith("/postgres/boto-q")
    assert sqs.get_queue_url(QueueName="boto-q")["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix="boto")["QueueUrls"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello from boto3",
                            MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    assert len(sent["MessageId"]) == 36
    got = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"])
    m = got["Messages"][0]
    assert m["Body"] == "hello from boto3"
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"
    assert m["MessageAttributes"]["k"]["StringValue"] == "v"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert attrs == {"VisibilityTimeout": "30"}


def test_batches_and_long_poll():
    url = sqs.create_queue(QueueName="boto-batch")["QueueUrl"]
    r = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two", "DelaySeconds": 1000}])
    assert [e["Id"] for e in r["Successful"]] == ["a"]
    assert r["Failed"][0]["Id"] == "b"
    t0 = time.time()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10)
    assert [m["Body"] for m in got["Messages"]] == ["one"]
    assert time.time() - t0 < 2
    d = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "x", "ReceiptHandle": got["Messages"][0]["ReceiptHandle"]}])
    assert [e["Id"] for e in d["Successful"]] == ["x"]
    t0 = time.time()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert time.time() - t0 >= 0.9


def test_sqs_errors():
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="boto-none")
    bad = client("sqs", secret="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_queues()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_topics_fan_out_to_a_queue():
    url = sqs.create_queue(QueueName="boto-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="boto-topic")["TopicArn"]
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                        Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
    sns.publish(TopicArn=topic, Message="fanned out",
                MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
    assert got["Messages"][0]["Body"] == "fanned out"
    sns.unsubscribe(SubscriptionArn=sub)
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.publish(TopicArn=topic + "-none", Message="x")


def test_streams():
    kinesis.create_stream(StreamName="boto-stream", ShardCount=1)
    summary = kinesis.describe_stream_summary(StreamName="boto-stream")["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 1
    put = kinesis.put_records(StreamName="boto-stream", Records=[
        {"Data": b"r1", "PartitionKey": "k"}, {"Data": b"r2", "PartitionKey": "k"}])
    assert put["FailedRecordCount"] == 0
    shard = kinesis.list_shards(StreamName="boto-stream")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="boto-stream", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = kinesis.get_records(ShardIterator=it)["Records"]
    assert [r["Data"] for r in recs] == [b"r1", b"r2"]
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.describe_stream_summary(StreamName="boto-none")


def test_query_protocol_paging_tags_and_permissions():
    urls = [sqs.create_queue(QueueName=f"boto-page-{i}")["QueueUrl"] for i in range(5)]
    pages = [p.get("QueueUrls", []) for p in sqs.get_paginator("list_queues").paginate(
        QueueNamePrefix="boto-page-", PaginationConfig={"PageSize": 2})]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sum(pages, []) == urls
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.list_queues(MaxResults=2, NextToken="not a token")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    dlq_arn = sqs.get_queue_attributes(QueueUrl=urls[0], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    for u in urls[1:]:
        sqs.set_queue_attributes(QueueUrl=u, Attributes={"RedrivePolicy": policy})
    sources = [p["queueUrls"] for p in sqs.get_paginator("list_dead_letter_source_queues").paginate(
        QueueUrl=urls[0], PaginationConfig={"PageSize": 3})]
    assert sources == [urls[1:4], urls[4:]]
    sqs.tag_queue(QueueUrl=urls[0], Tags={"team": "blue", "env": "dev"})
    sqs.untag_queue(QueueUrl=urls[0], TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=urls[0])["Tags"] == {"team": "blue"}
    sqs.add_permission(QueueUrl=urls[0], Label="all", AWSAccountIds=["public"], Actions=["SendMessage"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sqs.add_permission(QueueUrl=urls[0], Label="all", AWSAccountIds=["public"], Actions=["SendMessage"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    sqs.remove_permission(QueueUrl=urls[0], Label="all")
    topics = [t["TopicArn"] for p in sns.get_paginator("list_topics").paginate() for t in p["Topics"]]
    assert len(topics) == len(set(topics))
    kinesis.create_stream(StreamName="boto-pages", ShardCount=3)
    streams = [s for p in kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 1})
               for s in p["StreamNames"]]
    assert len(streams) == len(set(streams)) and "boto-pages" in streams
    want = [f"shardId-{i:012d}" for i in range(3)]
    pages = [[s["ShardId"] for s in p["StreamDescription"]["Shards"]] for p in kinesis.get_paginator(
        "describe_stream").paginate(StreamName="boto-pages", PaginationConfig={"PageSize": 2})]
    assert pages == [want[:2], want[2:]]
    # this botocore's ListShards paginator sends StreamName with NextToken, which AWS refuses too
    first = kinesis.list_shards(StreamName="boto-pages", MaxResults=2)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as e:
        kinesis.list_shards(StreamName="boto-pages", NextToken=first["NextToken"])
    assert e.value.response["Error"]["Message"] == "NextToken and StreamName cannot be provided together."
    rest = kinesis.list_shards(NextToken=first["NextToken"])
    assert [s["ShardId"] for s in first["Shards"] + rest["Shards"]] == want


def test_change_message_visibility_batch():
    url = sqs.create_queue(QueueName="boto-visibility")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two"}])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)["Messages"]
    assert len(got) == 2
    r = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "now", "ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "bad", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 0}])
    assert [e["Id"] for e in r["Successful"]] == ["now"]
    assert r["Failed"][0]["Id"] == "bad" and r["Failed"][0]["SenderFault"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == [got[0]["Body"]], "only the message made visible again"
