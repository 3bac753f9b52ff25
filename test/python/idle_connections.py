"""Open N keep-alive connections to msgq's AWS endpoint, make one
ListQueues request on each, then hold them all open until stdin closes.

Used by test/t/023_aws_endpoint.pl: prints "answered K" once every answer
is read (K of the N were HTTP 200), then "held" and waits.
Usage: idle_connections.py PORT N
"""
import resource
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < n + 64:
    print(f"the file limit {hard} is below {n + 64}", flush=True)
    sys.exit(1)
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, hard))

REQUEST = (b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSQS.ListQueues\r\n"
           b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}")


def answer(s):
    """One response: its status line, after reading its whole body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.split(b"\r\n")[0]


socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(REQUEST)
    socks.append(s)
ok = sum(1 for s in socks if answer(s).startswith(b"HTTP/1.1 200"))
print(f"answered {ok}", flush=True)
print("held", flush=True)
sys.stdin.read()
