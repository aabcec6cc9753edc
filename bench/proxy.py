"""A loopback TCP proxy that adds a network's latency, counts round trips, and can freeze or cut.

The benchmark puts one in front of PostgreSQL and one in front of Redis, so
that every figure it takes on loopback (a round trip of about 50 us) can be
taken again as if each store were 0.5 or 1 ms away, and so that it can say how
many round trips each request makes. The tests use the same class (as
``tests.servers.FreezableProxy``) to make a server go silent or go away.

What it does with the bytes:

- **Forwards** them both ways, unchanged, one thread per direction and
  connection (``TCP_NODELAY`` on both sides, so it adds no Nagle delay).
- **Delay:** every chunk the server sends is held ``delay_ms`` after it
  arrived before it is passed to the client, chunks independently (a chunk
  arriving while an earlier one is held is due ``delay_ms`` after its own
  arrival, so a long reply is not held once per chunk) and in order. The
  client's bytes go straight through. So each round trip costs ``delay_ms``
  more: the delay is the extra round-trip time of a store that far away.
  ``delay_ms`` can be changed while connections are open.
- **Counting:** a *round trip* (a turn) is counted when bytes arrive from the
  client and either they are the connection's first, or the proxy has passed
  server bytes to that client since the client's previous bytes. Bytes a
  client sends before it could have seen a reply (a pipeline, a message in
  several packets, what it sends while a reply is still held) belong to the
  same turn; server bytes nobody asked for (a notice) start none. One
  ``SELECT 1`` on an open connection is 1; a psycopg pipeline of five queries
  and one sync is 1; a Redis ``GET`` is 1, and so is a pipeline of ten
  commands. Opening a connection costs its own turns (PostgreSQL: the SSL
  request, then the startup and authentication), counted apart in
  ``connections`` as well.
- **Freeze** (``freeze``/``thaw``): connections stay open and nothing passes
  either way, as a server that stopped answering looks to its clients.
  **Cut** (``cut``): every open connection is shut down, the proxy keeps
  accepting; ``close`` stops listening as well (a server that went away).

    .venv/bin/python -m bench.proxy 127.0.0.1:6379 --port 16379 --delay-ms 1
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 256 * 1024
RECORDED = 1024  # bytes kept of each turn, while recording


@dataclass(frozen=True)
class Counts:
    """What passed through a proxy since it started or was last reset."""

    round_trips: int = 0  # client turns (see the module's docstring)
    connections: int = 0  # connections accepted
    replies: int = 0  # chunks passed from the server to its client
    bytes_to_server: int = 0
    bytes_to_client: int = 0


class _Connection:
    """One client, its upstream connection, and the server bytes held for the client."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.changed = threading.Condition()
        self.held: deque[tuple[float, bytes] | None] = deque()  # None: the server is done
        self.writing = False  # server bytes are being passed to the client right now
        self.new_turn = True  # the client's next bytes start a round trip
        self.finished = 0  # of its three threads
        self.number = 0  # the proxy's count of connections when this one opened

    def shutdown(self) -> None:
        for end in (self.client, self.server):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


class Proxy:
    """A TCP proxy on ``127.0.0.1:port`` to ``upstream``; listening once constructed."""

    def __init__(
        self, upstream: tuple[str, int], port: int | None = None, delay_ms: float = 0.0
    ) -> None:
        self.upstream = upstream
        self.delay_ms = delay_ms
        # While set, the first bytes of every turn (connection number, bytes): what was asked.
        self.recording: list[tuple[int, bytes]] | None = None
        # While set, called with every chunk a client sends (connection number, bytes).
        self.watch: Callable[[int, bytes], None] | None = None
        self.flowing = threading.Event()  # cleared: frozen
        self.flowing.set()
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(Counts.__dataclass_fields__, 0)
        self._connections: set[_Connection] = set()
        self._closed = False
        self._opened = 0
        self._late = 0.0  # s: how late sleep() wakes, on average (a spin makes up the rest)
        self._listener = socket.create_server(("127.0.0.1", port or 0))
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="proxy-accept")
        self._acceptor.start()

    # --- control ---------------------------------------------------------------------

    @property
    def delay_ms(self) -> float:
        """How long each chunk from the server is held before the client gets it."""
        return self._delay * 1000

    @delay_ms.setter
    def delay_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError("delay_ms must be >= 0")
        self._delay = value / 1000

    def counts(self) -> Counts:
        """The counters now."""
        with self._lock:
            return Counts(**self._counts)

    def reset(self) -> Counts:
        """Zero the counters; what they were."""
        with self._lock:
            counts = Counts(**self._counts)
            self._counts = dict.fromkeys(self._counts, 0)
        return counts

    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def freeze(self) -> None:
        """Hold everything, both ways, on every connection (they stay open)."""
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def cut(self) -> None:
        """Shut down every open connection; new ones are still accepted."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.shutdown()

    def close(self) -> None:
        """Stop listening and cut every connection (as a server that went away)."""
        self._closed = True
        self.thaw()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self.cut()
        if self._acceptor is not threading.current_thread():
            self._acceptor.join(5)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the threads -------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._closed:
                client.close()
                return
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        for end in (client, server):
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(client, server)
        with self._lock:
            self._connections.add(connection)
            self._counts["connections"] += 1
            self._opened += 1
            connection.number = self._opened
        if self._closed:  # closed while connecting
            connection.shutdown()
        for target in (self._to_server, self._to_client):
            threading.Thread(target=target, args=(connection,), daemon=True).start()
        self._from_server(connection)

    def _done(self, connection: _Connection) -> None:
        """One of the connection's threads ended: shut both ends; the last closes them."""
        connection.shutdown()
        with self._lock:
            connection.finished += 1
            last = connection.finished == 3
            if last:
                self._connections.discard(connection)
        if last:
            connection.client.close()
            connection.server.close()

    def _to_server(self, connection: _Connection) -> None:
        """Client -> server, straight through; counts the client's turns."""
        try:
            while data := connection.client.recv(CHUNK):
                with self._lock:
                    if connection.new_turn:
                        connection.new_turn = False
                        self._counts["round_trips"] += 1
                        if self.recording is not None:
                            self.recording.append((connection.number, data[:RECORDED]))
                    self._counts["bytes_to_server"] += len(data)
                if self.watch is not None:
                    self.watch(connection.number, data)
                self.flowing.wait()  # frozen: hold what arrived, send nothing on
                connection.server.sendall(data)
        except OSError:
            pass
        finally:
            self._done(connection)

    def _from_server(self, connection: _Connection) -> None:
        """Server -> proxy: passes a chunk on at once if nothing is held, else holds it."""
        try:
            while data := connection.server.recv(CHUNK):
                arrived = time.monotonic()
                with connection.changed:
                    now = self._delay == 0 and not connection.held and not connection.writing
                    if now:
                        connection.writing = True
                    else:
                        connection.held.append((arrived + self._delay, data))
                        connection.changed.notify_all()
                if now:
                    try:
                        self._pass_on(connection, data)
                    finally:
                        with connection.changed:
                            connection.writing = False
                            connection.changed.notify_all()
        except OSError:
            pass
        finally:
            with connection.changed:
                connection.held.append(None)  # what is held still goes, then the end
                connection.changed.notify_all()
            self._done(connection)

    def _to_client(self, connection: _Connection) -> None:
        """Proxy -> client: each held chunk once it is due, in order."""
        try:
            while True:
                with connection.changed:
                    while not connection.held or connection.writing:
                        connection.changed.wait()
                    item = connection.held.popleft()
                    if item is None:
                        return
                    connection.writing = True
                due, data = item
                try:
                    self._hold_until(due)
                    self._pass_on(connection, data)
                finally:
                    with connection.changed:
                        connection.writing = False
                        connection.changed.notify_all()
        except OSError:
            pass
        finally:
            self._done(connection)

    def _hold_until(self, due: float) -> None:
        """Sleep until ``due``: less by what sleeps usually overshoot, then spin the rest."""
        wait = due - time.monotonic()
        if wait > self._late:
            asked = wait - self._late
            slept = time.monotonic()
            time.sleep(asked)
            late = time.monotonic() - slept - asked
            self._late += (min(late, wait) - self._late) / 8  # a moving average
        while time.monotonic() < due:
            pass

    def _pass_on(self, connection: _Connection, data: bytes) -> None:
        self.flowing.wait()
        with self._lock:
            # From here the client can see a reply: its next bytes are a new turn.
            connection.new_turn = True
            self._counts["replies"] += 1
            self._counts["bytes_to_client"] += len(data)
        connection.client.sendall(data)


def main() -> int:
    """Run one proxy until interrupted, printing its counts every few seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", help="host:port of the server")
    parser.add_argument("--port", type=int, default=0, help="Listen here (default: a free port).")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--every", type=float, default=5.0, help="Seconds between counts.")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    with Proxy((host or "127.0.0.1", int(port)), args.port, args.delay_ms) as proxy:
        print(f"127.0.0.1:{proxy.port} -> {args.upstream}, delay {args.delay_ms} ms", flush=True)
        try:
            while True:
                time.sleep(args.every)
                print(proxy.counts(), flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
