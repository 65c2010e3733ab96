"""What ``batch.serving`` relies on from aiohttp beyond its public API, pinned: the protocol
``web.Server`` makes (``web_protocol.RequestHandler``, not public) is an asyncio protocol with
the methods the guard forwards, and ``request.protocol`` is that very object. An aiohttp upgrade
that changes any of it fails here, not in a user's listener or sandbox."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import aiohttp
import pytest
from aiohttp import web, web_protocol

from batch.serving import Limits, serve

#: The protocol methods the guard calls, with the parameters it passes.
FORWARDED = {
    "connection_made": ["self", "transport"],
    "data_received": ["self", "data"],
    "eof_received": ["self"],
    "connection_lost": ["self", "exc"],
    "pause_writing": ["self"],
    "resume_writing": ["self"],
}


def test_the_server_is_a_protocol_factory_without_arguments() -> None:
    call = inspect.signature(web.Server.__call__)
    assert list(call.parameters) == ["self"]
    assert call.return_annotation in (web_protocol.RequestHandler, "RequestHandler")


@pytest.mark.parametrize("name,params", sorted(FORWARDED.items()))
def test_the_handler_has_each_forwarded_method(name: str, params: list[str]) -> None:
    method = getattr(web_protocol.RequestHandler, name)
    assert callable(method)
    assert list(inspect.signature(method).parameters) == params


def test_the_handler_is_an_asyncio_protocol() -> None:
    assert issubclass(web_protocol.RequestHandler, asyncio.Protocol)


def test_a_request_names_the_handler_the_server_made() -> None:
    assert isinstance(inspect.getattr_static(web.BaseRequest, "protocol"), property)


async def test_each_request_reaches_the_guard_through_its_own_handler() -> None:
    seen: list[Any] = []

    async def hello(request: web.Request) -> web.Response:
        seen.append(request.protocol)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", hello)
    async with serve(app, limits=Limits()) as served, aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(served.url + "/") as resp:
                assert resp.status == 200
        assert served.stats.open == 1  # one kept-alive connection, seen by the guard
    assert len(seen) == 2 and seen[0] is seen[1]
    assert isinstance(seen[0], web_protocol.RequestHandler)
