"""A TCP proxy that holds every byte for a fixed delay in each direction:
`python -m sim.delayproxy --listen HOST:PORT --target HOST:PORT --delay-ms D`.

The kernel here has no `netem`, so added delay is made in user space: the
proxy stamps each chunk it reads with the time it arrived and writes it on
only when that time plus the delay has come. Bytes keep their order, so
ZeroMQ's framing passes through untouched, subscriptions upstream and
updates downstream alike. It prints `listening` once it accepts
connections, so whoever started it can wait for that instead of sleeping.

What it adds beyond the delay: one extra read and write per chunk, and
asyncio's timer, which sleeps in whole milliseconds (epoll's timeout), so a
chunk is held for between the delay and about a millisecond more. Memory
grows with what is in flight during the delay; nothing bounds it, which is
fine for a test run and would not be for a long one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

logger = logging.getLogger(__name__)

READ_BYTES = 65_536


async def _hold_and_forward(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float
) -> None:
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def take() -> None:
        while chunk := await reader.read(READ_BYTES):
            held.put_nowait((loop.time() + delay_s, chunk))
        held.put_nowait((loop.time() + delay_s, b""))

    async def give() -> None:
        while True:
            due, chunk = await held.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        writer.close()

    await asyncio.gather(take(), give(), return_exceptions=True)


async def _serve(listen: tuple[str, int], target: tuple[str, int], delay_s: float):
    async def connection(
        down_reader: asyncio.StreamReader, down_writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError as error:
            logger.warning("cannot reach %s:%d: %s", *target, error)
            down_writer.close()
            return
        await asyncio.gather(
            _hold_and_forward(down_reader, up_writer, delay_s),
            _hold_and_forward(up_reader, down_writer, delay_s),
        )

    server = await asyncio.start_server(connection, *listen)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.delayproxy")
    parser.add_argument("--listen", required=True, type=_address)
    parser.add_argument("--target", required=True, type=_address)
    parser.add_argument("--delay-ms", required=True, type=float)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.listen, args.target, args.delay_ms / 1000))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
