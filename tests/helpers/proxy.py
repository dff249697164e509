"""A TCP proxy that a test can cut: all connections dropped, new ones refused.

Point a service's database URL at the proxy instead of PostgreSQL, then
``cut()`` to simulate the database becoming unreachable (established
connections reset, the port closed so connects are refused) and ``restore()``
to bring it back on the same port.
"""

from __future__ import annotations

import socket
import struct
import threading
import time


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.accepted = 0

    # -- control -------------------------------------------------------------
    def start(self) -> "TcpProxy":
        self._listen()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        self._close_listener()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            _reset(s)

    def restore(self, timeout: float = 10.0) -> None:
        """Accept connections again, on the same port."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._listen()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.cut()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- internals -----------------------------------------------------------
    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, self.port))
        except OSError:
            s.close()
            raise
        s.listen(128)
        self.port = s.getsockname()[1]
        self._listener = s
        self._acceptor = threading.Thread(target=self._accept, args=(s,), name="proxy-accept", daemon=True)
        self._acceptor.start()

    def _close_listener(self) -> None:
        s, self._listener = self._listener, None
        if s is None:
            return
        try:
            s.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        if self._acceptor is not None:
            self._acceptor.join(5.0)
        s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                _reset(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5.0)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), name="proxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()  # each socket is the source of exactly one pump


def _reset(s: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the connection reset at once."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
