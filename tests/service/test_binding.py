"""One process's port is bound before the models load (a port in use said at once) and refuses
connections until uvicorn listens on it (a health check neither passes early nor hangs)."""

from __future__ import annotations

import logging
import socket

import pytest

from service.binding import bound_sockets, shown


def test_a_bound_port_refuses_connections_until_it_listens() -> None:
    sockets = bound_sockets("127.0.0.1", 0)
    assert sockets is not None and len(sockets) == 1
    address = sockets[0].getsockname()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2)
        sockets[0].listen()
        socket.create_connection(address, timeout=2).close()
    finally:
        sockets[0].close()


@pytest.mark.parametrize("which", ["port", "grpc_port"])
def test_a_port_in_use_is_said_in_one_line(caplog: pytest.LogCaptureFixture, which: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken, socket.create_server(("127.0.0.1", 0)) as spare:
        port = taken.getsockname()[1]
        free = spare.getsockname()[1]
        spare.close()
        ports = {"port": port, "grpc_port": free} if which == "port" else {"port": free, "grpc_port": port}
        with caplog.at_level(logging.ERROR):
            assert bound_sockets("127.0.0.1", **ports) is None
    setting = f"CTR_{which.upper()}"  # the HTTP and the gRPC port read alike: the line names which
    assert f"cannot listen on 127.0.0.1:{port} ({setting}): Address already in use" in caplog.text
    with socket.create_server(("127.0.0.1", free)):  # the HTTP socket bound before the refusal was closed
        pass


def test_an_ipv6_address_is_shown_in_brackets() -> None:
    assert shown("::1", 8000) == "[::1]:8000" and shown("127.0.0.1", 8000) == "127.0.0.1:8000"


def test_an_ipv6_host_with_a_grpc_port_binds() -> None:
    """The gRPC port was checked on IPv4 alone: ``::1`` with a gRPC port was 'Address family for hostname
    not supported', and the service did not start."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with socket.socket(socket.AF_INET6) as spare:
        spare.bind(("::1", 0))
        grpc_port = spare.getsockname()[1]
    sockets = bound_sockets("::1", 0, grpc_port)
    assert sockets is not None and sockets[0].family == socket.AF_INET6
    for sock in sockets:
        sock.close()


LOOPBACKS = (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6))


def ipv6_here() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")


def test_the_unspecified_ipv6_address_serves_ipv4_clients_too() -> None:
    """``CTR_HOST=::`` was v6-only: ``http://127.0.0.1:PORT`` (the image's HEALTHCHECK) was refused, while
    gRPC on the same host answered on both families."""
    ipv6_here()
    sockets = bound_sockets("::", 0)
    assert sockets is not None and len(sockets) == 1
    try:
        sockets[0].listen()
        port = sockets[0].getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        socket.create_connection(("::1", port), timeout=2).close()
    finally:
        sockets[0].close()


def test_a_grpc_port_held_on_ipv4_is_taken_for_the_unspecified_ipv6_address(caplog: pytest.LogCaptureFixture) -> None:
    """gRPC binds ``[::]`` dual-stack: the probe was v6-only, so a port held on 0.0.0.0 passed it and the
    gRPC server failed once the models had loaded."""
    ipv6_here()
    with socket.create_server(("0.0.0.0", 0)) as taken:
        grpc_port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            assert bound_sockets("::", 0, grpc_port) is None
    assert f"cannot listen on [::]:{grpc_port} (CTR_GRPC_PORT): Address already in use" in caplog.text


def test_a_name_of_both_families_binds_each_ipv6_address_v6_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host resolving to an IPv4 and an IPv6 address binds each on a socket of its own: a dual-stack ``::``
    beside 0.0.0.0 would collide with it."""
    ipv6_here()
    found = socket.getaddrinfo
    both = found("0.0.0.0", 0, socket.AF_INET, socket.SOCK_STREAM) + found("::", 0, socket.AF_INET6, socket.SOCK_STREAM)
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = spare.getsockname()[1]
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *_: [(*info[:4], (*info[4][:1], port, *info[4][2:])) for info in both]
    )
    sockets = bound_sockets("both-families", port)
    assert sockets is not None and [s.family for s in sockets] == [socket.AF_INET, socket.AF_INET6]
    try:
        assert sockets[1].getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        for sock in sockets:
            sock.close()


def test_a_link_local_address_without_its_zone_blames_the_host(caplog: pytest.LogCaptureFixture) -> None:
    """bind says EINVAL of ``fe80::...`` without its zone (``%eth0``): the line blamed the port, ``(CTR_PORT):
    Invalid argument``."""
    ipv6_here()
    with caplog.at_level(logging.ERROR):
        assert bound_sockets("fe80::fc:ff:fe00:1", 18230) is None
    assert "cannot listen on [fe80::fc:ff:fe00:1]:18230 (CTR_HOST): Invalid argument" in caplog.text


def test_a_port_taken_on_one_family_of_a_name_names_that_address(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A name resolving to 127.0.0.1 and ::1 (``localhost``) whose port another socket holds on ::1 alone: the
    line said ``localhost:PORT``, which the user found free on 127.0.0.1."""
    ipv6_here()
    found = socket.getaddrinfo
    both = found("127.0.0.1", 0, socket.AF_INET, socket.SOCK_STREAM) + found(
        "::1", 0, socket.AF_INET6, socket.SOCK_STREAM
    )
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as taken:
        port = taken.getsockname()[1]
        monkeypatch.setattr(
            socket, "getaddrinfo", lambda *_: [(*info[:4], (*info[4][:1], port, *info[4][2:])) for info in both]
        )
        with caplog.at_level(logging.ERROR):
            assert bound_sockets("both-families", port) is None
    assert f"cannot listen on both-families:{port} at [::1]:{port} (CTR_PORT): Address already in use" in caplog.text
