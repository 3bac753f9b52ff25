// make demo, step 23: one message through the AWS SDK for JavaScript v3 (the
// SDK test/node's package-lock.json pins), to msgq's AWS endpoint.
import { createRequire } from "node:module";

const require = createRequire(new URL("../test/node/package.json", import.meta.url));
const { SQSClient, SendMessageCommand, ReceiveMessageCommand, DeleteMessageCommand } = require("@aws-sdk/client-sqs");

const [endpoint, accessKeyId, secretAccessKey, QueueUrl] = process.argv.slice(2);
const sqs = new SQSClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } });
const sent = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "sent by the AWS SDK" }));
console.log(`SendMessage: MessageId ${sent.MessageId}, MD5 checked by the SDK`);
const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5 }));
console.log(`ReceiveMessage: ${JSON.stringify(Messages.map((m) => m.Body))}`);
await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0].ReceiptHandle }));
console.log("DeleteMessage: done");
