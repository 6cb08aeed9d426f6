#!/usr/bin/env python3
"""A loopback TCP relay that counts the bytes of every connection in each direction.

    count_relay.py LISTEN_PORT TARGET_HOST:TARGET_PORT LOG_FILE

Each closed connection appends one JSON line to LOG_FILE:
{"conn": n, "up": bytes client->server, "down": bytes server->client, "records": {...}}.
The bytes are TCP payload, i.e. TLS records, handshake included; "records" lists each
direction's TLS records as [content type, length] in order (22 handshake, 23 data, 20 CCS).
Prints "ready" once listening.
"""
import asyncio
import json
import sys


def records(stream):
    """Splits a byte stream into TLS records: [[content_type, length], ...]."""
    out, i = [], 0
    while i + 5 <= len(stream):
        length = int.from_bytes(stream[i + 3:i + 5], "big")
        out.append([stream[i], length])
        i += 5 + length
    return out


async def pump(reader, writer, counter, key):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            counter[key] += len(data)
            counter["raw_" + key] += data
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    listen_port = int(sys.argv[1])
    host, port = sys.argv[2].rsplit(":", 1)
    log_path = sys.argv[3]
    conns = 0

    async def handle(client_reader, client_writer):
        nonlocal conns
        conns += 1
        n = conns
        counter = {"up": 0, "down": 0, "raw_up": bytearray(), "raw_down": bytearray()}
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(
            pump(client_reader, server_writer, counter, "up"),
            pump(server_reader, client_writer, counter, "down"),
        )
        with open(log_path, "a") as log:
            entry = {"conn": n, "up": counter["up"], "down": counter["down"],
                     "records": {"up": records(counter["raw_up"]), "down": records(counter["raw_down"])}}
            log.write(json.dumps(entry) + "\n")

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
