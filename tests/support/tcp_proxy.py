"""A threaded TCP proxy on 127.0.0.1 that can lose one answer: the request reaches the server, the connection
closes before its reply reaches the client (a Redis restart between the two, as the client sees it).

    with TcpProxy(redis_port) as proxy:
        client = redis.Redis(port=proxy.port)
        proxy.lose_reply_to(b"EVALSHA")   # the next request containing it runs; its answer is lost
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.net import free_port


class TcpProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.lost = 0  # answers lost so far
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (close alone does not)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
        self._thread.join(timeout=5)

    def lose_reply_to(self, marker: bytes) -> None:
        with self._lock:
            self._marker = marker

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets.update((client, server))
            doomed = threading.Event()  # set when this connection's next answer must be lost
            threading.Thread(target=self._requests, args=(client, server, doomed), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client, doomed), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket, doomed: threading.Event) -> None:
        while data := _recv(client):
            with self._lock:
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    doomed.set()
            with contextlib.suppress(OSError):
                server.sendall(data)
        _close(server)

    def _replies(self, server: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        while data := _recv(server):
            if doomed.is_set():
                with self._lock:
                    self.lost += 1
                break
            with contextlib.suppress(OSError):
                client.sendall(data)
        _close(client)
        _close(server)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
