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
