"""One process's port, bound before any model is loaded and listened on once they are.

A port that another socket holds, or a host that does not resolve, is said in one line naming the
address within a second of the start, where it was said only after every model had loaded and been
warmed up (and "ready" logged). The sockets are bound but not listening while the models load: a client
that connects then is refused at once, as when nothing was bound, not left in the backlog until the
start-up ends, so a TCP or HTTP health check neither passes early nor hangs. uvicorn listens on them
when it starts serving. Every address the host resolves to is bound, as uvicorn binds a host by name
(``localhost``: 127.0.0.1 and ::1), each IPv6 socket v6-only as asyncio makes them, but for ``::``
alone: dual-stack, IPv4 clients too, as gRPC binds it. The gRPC port is checked free too, on the same
sockets' addresses and families as its server binds them (after the models load). Two services started
at once on one port both bind it (``SO_REUSEADDR`` lets sockets share an address none listens on): the
second finds it taken when it listens, once its models are loaded, and exits saying so, in the same one
line (``refused_listening``). Listening at the bind would hold the port from then on, but leave clients
connecting during the load in the backlog: the refusal is the price of the prompt one. The line names the setting
at fault as the user set it: the host's for an address that does not resolve or is not this machine's (or
a link-local one without its zone), the port's otherwise, as ``--host``/``--port`` where ``ctr serve`` was
given them (``SETTING_NAMES``), where it said ``(CTR_PORT)`` for a ``--host`` that did not resolve; and the
address that failed, of a host that resolves to several (``localhost:8000 at [::1]:8000``: ``AddressRefused``).
"""

from __future__ import annotations

import errno
import logging
import socket

logger = logging.getLogger(__name__)

# How the user set each setting: its variable, unless ``ctr serve`` was given the option (name_settings)
VARIABLE_NAMES = {"host": "CTR_HOST", "port": "CTR_PORT", "grpc_port": "CTR_GRPC_PORT"}
SETTING_NAMES = dict(VARIABLE_NAMES)
# Errors of the host, not of the port: a name that does not resolve, an address not this machine's, an address
# bind cannot take (EINVAL: a link-local IPv6 address without its zone, fe80::1 for fe80::1%eth0; on a fresh
# socket bind says it of the address alone, a port out of range being Python's OverflowError before the call)
HOST_ERRNOS = {errno.EADDRNOTAVAIL, errno.EINVAL}


def name_settings(given_as: dict[str, str]) -> None:
    """Name these settings (``{"port": "--port"}``) as the command line gave them, in what is said here, and
    the others by their variables (a command run before in this process named its own options)."""
    SETTING_NAMES.clear()
    SETTING_NAMES.update(VARIABLE_NAMES)
    SETTING_NAMES.update({setting: name for setting, name in given_as.items() if setting in VARIABLE_NAMES})


def bound_sockets(host: str, port: int, grpc_port: int = 0) -> list[socket.socket] | None:
    """Sockets bound to every address of ``host:port``, not listening; None (said in one line) when one
    cannot be bound, or when ``grpc_port`` (0: none) is taken."""
    sockets: list[socket.socket] = []
    try:
        _bind_every_address(host, port, sockets)
    except OSError as error:
        return _refused(sockets, host, port, error, _at_fault(error, "port"))
    if grpc_port:
        probes: list[socket.socket] = []
        try:  # free now, at every address (an IPv6 host's too): its server binds it once the models load
            _bind_every_address(host, grpc_port, probes)
            for probe in probes:
                try:
                    probe.listen()
                except OSError as error:
                    raise AddressRefused(error, probe.getsockname()[0]) from error
        except OSError as error:
            return _refused(sockets, host, grpc_port, error, _at_fault(error, "grpc_port"))
        finally:
            for probe in probes:
                probe.close()
    return sockets


def said_bound(sockets: list[socket.socket]) -> None:
    """The start-up's line of the addresses ``sockets`` are bound to, each a URL to paste (``http://[::1]:8000``):
    one process's and the workers' supervisor's alike, where the supervisor said only ``[::1]:8000``."""
    addresses = ", ".join(f"http://{shown(*s.getsockname()[:2])}" for s in sockets)
    logger.info("bound %s: serving there once the models are loaded", addresses)


def _bind_every_address(host: str, port: int, sockets: list[socket.socket]) -> None:
    """Bind a socket to each address of ``host:port``, appended to ``sockets`` as it is made (so that the
    caller closes those made before an OSError). An IPv6 socket is v6-only, as asyncio makes them, where the
    host's IPv4 addresses are bound by sockets of their own (``localhost``: a dual-stack ::1 socket would
    collide with the 127.0.0.1 one), but dual-stack for the unspecified address ``::`` alone: IPv4 clients
    reach it too, as gRPC's server on the same host (and Go's, gunicorn's) binds it. A v6-only ``::``
    refused ``http://127.0.0.1:PORT``, the image's HEALTHCHECK included, while gRPC answered on IPv4."""
    addresses = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    for family, kind, protocol, _, address in addresses:
        sock = socket.socket(family, kind, protocol)
        sockets.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if _dual_stack(address, addresses) else 1)
        try:
            sock.bind(address)
        except OSError as error:
            raise AddressRefused(error, address[0]) from error


class AddressRefused(OSError):
    """``error`` (its errno and words), of one of a host's addresses (``address``): the line names it where the
    host resolves to several. A port taken on one family alone of ``localhost`` (127.0.0.1 and ::1) was said
    as "cannot listen on localhost:8000 (CTR_PORT): Address already in use", which left the other's free."""

    def __init__(self, error: OSError, address: str) -> None:
        super().__init__(error.errno, error.strerror)
        self.address = address


def _dual_stack(address: tuple, addresses: list[tuple]) -> bool:
    """Whether this IPv6 address, one of the host's ``addresses`` (getaddrinfo's), is bound for IPv4 clients
    too: the unspecified one, where no IPv4 address of the host is bound by a socket of its own."""
    return address[0] == "::" and all(family != socket.AF_INET for family, *_ in addresses)


def refused_listening(sockets: list[socket.socket], error: OSError) -> None:
    """Said in one line naming the address: ``error``, raised as uvicorn listened on ``sockets`` (bound here),
    the first of them not listening. Its port was taken since its bind, by a socket that listened first
    (another process binding it with ``SO_REUSEADDR``, or two services started at once on one port): the
    start ended in a 196-line traceback after the models had loaded, and exited 1."""
    failed = next((s for s in sockets if not s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)), sockets[0])
    host, port = failed.getsockname()[:2]
    _refused([], host, port, error, _at_fault(error, "port"))


class ListenRefused(Exception):
    """A port the service could not listen on, said in one line (``said_refused``) where it was raised: from
    the lifespan (the gRPC server's bind), server.py drops uvicorn's copy of the traceback."""


def _refused(sockets: list[socket.socket], host: str, port: int, error: OSError, setting: str) -> None:
    """Said in one line naming the setting (the HTTP or the gRPC port: they read alike), and the address of
    the host's that failed where it is not the host as given (``AddressRefused``)."""
    address = error.address if isinstance(error, AddressRefused) and error.address != host else None
    said_refused(host, port, setting, error.strerror or str(error), address)
    for sock in sockets:
        sock.close()


def said_refused(host: str, port: int, setting: str, reason: str, address: str | None = None) -> None:
    """The one line of an address the service cannot listen on, ``setting`` the name of the one at fault;
    ``address``: the one of the host's addresses that failed (``localhost:8000 at [::1]:8000``)."""
    at = f" at {shown(address, port)}" if address is not None else ""
    logger.error("cannot listen on %s%s (%s): %s", shown(host, port), at, setting, reason)


def _at_fault(error: OSError, port_setting: str) -> str:
    """The name of the setting ``error`` is about: the host's, or the port's (``port_setting``)."""
    about_host = isinstance(error, socket.gaierror) or error.errno in HOST_ERRNOS
    return SETTING_NAMES["host" if about_host else port_setting]


def shown(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


IPV4_MAPPED = "::ffff:"  # the prefix of an IPv4 client's address on a dual-stack socket (RFC 4291 section 2.5.5.2)


def peer_shown(host: str, port: int) -> str:
    """A client's address as the logs name it: ``shown``, an IPv4 client of the dual-stack ``::`` socket
    (``::ffff:127.0.0.1``) as the IPv4 address it is, as gRPC's lines name it (HTTP's said
    ``[::ffff:127.0.0.1]:49124`` where gRPC's said ``127.0.0.1:57554``)."""
    if host.startswith(IPV4_MAPPED) and "." in host:
        host = host[len(IPV4_MAPPED) :]
    return shown(host, port)
