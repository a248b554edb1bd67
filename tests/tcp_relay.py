"""A TCP relay for the execution-node tests: ``tcp_relay.py LISTEN_ADDR TARGET_ADDR PORT...``.

Listens on LISTEN_ADDR:PORT for every PORT and connects each client to TARGET_ADDR:PORT, both ways,
until either side closes. Prints ``ready`` once every port listens; runs until it is killed.
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.write_eof() if writer.can_write_eof() else writer.close()
        except (ConnectionError, OSError, RuntimeError):
            writer.close()


async def _serve(listen: str, target: str, port: int) -> asyncio.Server:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target, port)
        except OSError:
            writer.close()  # like the target itself: the client sees the connection end
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        writer.close()
        up_writer.close()

    return await asyncio.start_server(client, listen, port, reuse_address=True)


async def main(listen: str, target: str, ports: list[int]) -> None:
    servers = [await _serve(listen, target, p) for p in ports]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]))
