#!/usr/bin/env python3
"""A loopback TCP relay that counts the bytes of every connection in each direction.

    count_relay.py LISTEN_PORT TARGET_HOST:TARGET_PORT LOG_FILE

Each closed connection appends one JSON line to LOG_FILE:
{"conn": n, "up": bytes client->server, "down": bytes server->client}. The bytes are TCP
payload, i.e. TLS records, handshake included. Prints "ready" once listening.
"""
import asyncio
import json
import sys


async def pump(reader, writer, counter, key):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            counter[key] += len(data)
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
        counter = {"up": 0, "down": 0}
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(
            pump(client_reader, server_writer, counter, "up"),
            pump(server_reader, client_writer, counter, "down"),
        )
        with open(log_path, "a") as log:
            log.write(json.dumps({"conn": n, **counter}) + "\n")

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
