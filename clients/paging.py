"""Every item of a paginated listing (AIP page_size/page_token): the call is made again with
each next_page_token until the last page, whose token is empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any


def pages(call: Callable[[Any], Any], request: Any, field: str) -> Iterator[Any]:
    """The items in `field` of every page; `request` gets each page's token in turn."""
    while True:
        page = call(request)
        yield from getattr(page, field)
        if not (token := page.next_page_token):
            return
        request.page_token = token


async def async_pages(
    call: Callable[[Any], Awaitable[Any]], request: Any, field: str
) -> AsyncIterator[Any]:
    """`pages` for an asyncio client."""
    while True:
        page = await call(request)
        for item in getattr(page, field):
            yield item
        if not (token := page.next_page_token):
            return
        request.page_token = token
