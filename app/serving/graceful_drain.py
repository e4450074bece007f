"""SIGTERM drains the listening socket: every connection already queued gets its answer.

gunicorn's stock shutdown closes the master's listeners and tells the sync workers to stop; the
workers finish the request in hand and exit, and the kernel resets every connection still in the
accept backlog (clients see "connection reset" on requests they had already sent). Here the master
first attaches a drop-everything socket filter to the listeners: new handshakes stop completing
(those clients are refused once the port closes, before they could send a request), while
connections already established are untouched. The workers then accept until the backlog is
empty, answer each with `Connection: close`, and exit. Nothing new can join the backlog after the
filter, so "empty" is final.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import socket
import struct
from typing import Any

from gunicorn.workers.sync import SyncWorker

# Linux: SO_ATTACH_FILTER with a classic BPF program of one instruction, "return 0" (keep 0
# bytes: drop). The kernel copies the program, so the buffer only has to live during the call.
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
_BPF_RET_K = 0x06
_DROP_ALL = struct.pack("HBBI", _BPF_RET_K, 0, 0, 0)

# One shared byte, mapped before the workers are forked: the master sets it when it shuts down,
# so a worker can tell shutdown (drain) from a reload or a max-requests restart (just exit).
_SHUTTING_DOWN = mmap.mmap(-1, 1)


def stop_new_connections(listener: socket.socket) -> None:
    """Drop new handshakes on `listener`; connections already queued stay acceptable."""
    program = ctypes.create_string_buffer(_DROP_ALL)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog {len; *filter}
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def shutting_down() -> bool:
    return _SHUTTING_DOWN[0] == 1


def _sockets_shared_elsewhere(arbiter: Any) -> bool:
    """After USR2, under systemd socket activation or with reuse_port, another process serves the
    same socket (or each worker has its own): a filter would stop that process too."""
    return bool(arbiter.reexec_pid or arbiter.master_pid or arbiter.systemd or arbiter.cfg.reuse_port)


def drain_on_term(arbiter: Any) -> None:
    """Make the arbiter's SIGTERM stop new connections before it closes its listeners."""
    default_handle_term = arbiter.handle_term

    def handle_term() -> None:
        if not _sockets_shared_elsewhere(arbiter):
            try:
                for listener in arbiter.LISTENERS:
                    stop_new_connections(listener.sock)
                _SHUTTING_DOWN[0] = 1
            except OSError as error:  # no socket filters here: gunicorn's stock shutdown
                arbiter.log.warning("cannot drain the listeners on shutdown: %s", error)
        default_handle_term()

    arbiter.handle_term = handle_term


class DrainingSyncWorker(SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker that, on shutdown, answers every connection left in the backlog."""

    def run(self) -> None:
        super().run()
        if shutting_down():
            self.drain()

    def drain(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
            while True:
                self.notify()
                try:
                    self.accept(listener)
                except OSError as error:
                    if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break  # the backlog is empty, and the filter keeps it so
                    if error.errno != errno.ECONNABORTED:
                        raise
