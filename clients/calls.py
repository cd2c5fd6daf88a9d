"""How one definition of a call serves both clients.

A call is written once, as a plan: a generator that yields the steps to take (a unary RPC, an
upload, a stream read to its end, a pause) and gets each step's answer back, returning the
call's result; or, for calls that answer item after item, a `Pages` or `Stream` description.
`Call` and `ItemsCall` turn a plan into a method: on a `SyncCaller` (the `Client`) the steps are
taken in turn, on an `AsyncCaller` (the `AsyncClient`) they are awaited. The table of every call
is clients/call_table.py.

Each step names its RPC by its request message: every RPC of the contracts takes its own
request type (AIP), so the request says which method to call (`rpc_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import pkgutil
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterable,
)
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

import grpc
import interops
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2

from clients.credentials import Metadata
from clients.errors import from_rpc_error
from clients.paging import async_pages, pages

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def interops_services() -> list[ServiceDescriptor]:
    """Every service of the contracts (gen/interops), found by walking the generated modules."""
    found = []
    for module in pkgutil.walk_packages(interops.__path__, "interops."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            found.extend(descriptor.services_by_name.values())
    return sorted(found, key=lambda service: service.full_name)


@dataclass(frozen=True)
class Rpc:
    """One method of a service, with its message classes."""

    path: str
    method: MethodDescriptor
    request: type[Message]
    response: type[Message]

    @classmethod
    def of(cls, method: MethodDescriptor) -> Rpc:
        """The RPC of a method descriptor."""
        path = f"/{method.containing_service.full_name}/{method.name}"
        return cls(path, method, GetMessageClass(method.input_type),
                   GetMessageClass(method.output_type))  # fmt: skip


def _index() -> dict[tuple[str, bool], Rpc]:
    """The RPCs by request type and whether they stream their answer (grpc.health's Check and
    Watch share a request type, one answering once, the other streaming)."""
    services = [*interops_services(), health_pb2.DESCRIPTOR.services_by_name["Health"]]
    index: dict[tuple[str, bool], Rpc] = {}
    for method in (m for service in services for m in service.methods):
        key = (method.input_type.full_name, method.server_streaming)
        if key in index:
            raise TypeError(f"{method.full_name} shares its request type with another RPC")
        index[key] = Rpc.of(method)
    return index


_RPCS = _index()


def rpc_of(request: type[Message] | Message, *, streaming: bool = False) -> Rpc:
    """The RPC that takes this request (the one streaming its answer when `streaming`)."""
    return _RPCS[(request.DESCRIPTOR.full_name, streaming)]


# -- the steps a plan yields; each is sent back its answer ----------------------------------


@dataclass(frozen=True)
class Unary:
    """One unary RPC, within the client's timeout; answers its response."""

    request: Message
    metadata: Metadata | None = None


@dataclass(frozen=True)
class Upload:
    """The client-streaming RPC taking `request_type`, fed with `requests`, without deadline;
    answers its response."""

    request_type: type[Message]
    requests: Iterable[Message]


@dataclass(frozen=True)
class Collect:
    """A server-streaming RPC read to its end; answers the list of its responses."""

    request: Message


@dataclass(frozen=True)
class Pause:
    """Waits `seconds` before the next step; answers None."""

    seconds: float


Step = Unary | Upload | Collect | Pause
Steps = Generator[Step, Any, R]


# -- the calls that answer item after item ---------------------------------------------------


@dataclass(frozen=True)
class Pages(Generic[T]):
    """Every item in `field` of every page of a List call (a copy of `request` is sent again
    with each next_page_token)."""

    request: Message
    field: str


@dataclass(frozen=True)
class Stream(Generic[T]):
    """The items of a server stream, `item` read from each response; closing the iterator ends
    the stream on the server too. `timeout` ends it after that many seconds."""

    request: Message
    item: Callable[[Any], T]
    timeout: float | None = None


Items = Pages[T] | Stream[T]


def _copy(request: Message) -> Message:
    copy = type(request)()
    copy.CopyFrom(request)
    return copy


class Caller:
    """A channel, the client's timeout, and the channel's callable for each RPC."""

    timeout: float | None
    _channel: Any  # a grpc.Channel or a grpc.aio.Channel: both make the same callables
    _multicallables: dict[str, Any]

    def _callable(self, request: type[Message] | Message, streaming: bool = False) -> Any:
        rpc = rpc_of(request, streaming=streaming)
        if rpc.path not in self._multicallables:
            kind = ("stream_" if rpc.method.client_streaming else "unary_") + (
                "stream" if streaming else "unary"
            )
            self._multicallables[rpc.path] = getattr(self._channel, kind)(
                rpc.path, rpc.request.SerializeToString, rpc.response.FromString
            )
        return self._multicallables[rpc.path]


class SyncCaller(Caller):
    """Takes the steps of plans on a synchronous channel, raising clients.errors exceptions."""

    def _unary(self, method: Callable[..., T], request: Any, metadata: Any = None) -> T:
        try:
            return method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _stream(self, method: Callable[..., Any], request: Any) -> Generator[Any, None, None]:
        call = method(request)
        try:
            yield from call
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            # The caller stopped reading: end the stream on the server too. (Traced, the call
            # is the tracing interceptor's generator: closing it drops the call, which cancels.)
            cancel = getattr(call, "cancel", None) or getattr(call, "close", None)
            if cancel is not None:
                cancel()

    def _take(self, step: Step) -> Any:
        if isinstance(step, Unary):
            return self._unary(self._callable(step.request), step.request, step.metadata)
        if isinstance(step, Upload):
            try:
                return self._callable(step.request_type)(step.requests, timeout=None)
            except grpc.RpcError as error:
                raise from_rpc_error(error) from None
        if isinstance(step, Collect):
            return list(self._stream(self._callable(step.request, True), step.request))
        time.sleep(step.seconds)
        return None

    def _run(self, steps: Steps[R]) -> R:
        answer = None
        while True:
            try:
                step = steps.send(answer)
            except StopIteration as done:
                result: R = done.value
                return result
            answer = self._take(step)

    def _items(self, items: Items[T]) -> Generator[T, None, None]:
        if isinstance(items, Pages):
            yield from pages(lambda request: self._take(Unary(request)), _copy(items.request),
                             items.field)  # fmt: skip
            return
        method = functools.partial(self._callable(items.request, True), timeout=items.timeout)
        with contextlib.closing(self._stream(method, items.request)) as responses:
            for response in responses:
                yield items.item(response)


class AsyncCaller(Caller):
    """Awaits the steps of plans on an asyncio channel, raising clients.errors exceptions."""

    async def _unary(self, method: Callable[..., Any], request: Any, metadata: Any = None) -> Any:
        try:
            return await method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def _stream(self, method: Callable[..., Any], request: Any) -> AsyncGenerator[Any, None]:
        call = method(request)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()  # the caller stopped reading: end the stream on the server too

    async def _take(self, step: Step) -> Any:
        if isinstance(step, Unary):
            return await self._unary(self._callable(step.request), step.request, step.metadata)
        if isinstance(step, Upload):
            # The requests are read in the event loop's thread (a file, one chunk a message).
            try:
                return await self._callable(step.request_type)(step.requests, timeout=None)
            except grpc.RpcError as error:
                raise from_rpc_error(error) from None
        if isinstance(step, Collect):
            method = self._callable(step.request, True)
            return [response async for response in self._stream(method, step.request)]
        await asyncio.sleep(step.seconds)
        return None

    async def _run(self, steps: Steps[R]) -> R:
        answer = None
        while True:
            try:
                step = steps.send(answer)
            except StopIteration as done:
                result: R = done.value
                return result
            answer = await self._take(step)

    async def _items(self, items: Items[T]) -> AsyncGenerator[T, None]:
        if isinstance(items, Pages):
            async for item in async_pages(lambda request: self._take(Unary(request)),
                                          _copy(items.request), items.field):  # fmt: skip
                yield item
            return
        method = functools.partial(self._callable(items.request, True), timeout=items.timeout)
        responses = self._stream(method, items.request)
        try:
            async for response in responses:
                yield items.item(response)
        finally:
            await responses.aclose()


class Call(Generic[P, R]):
    """A call that answers once, from a plan of steps: `client.name(...)` returns the result
    on a Client, and a coroutine of it on an AsyncClient."""

    def __init__(self, plan: Callable[P, Steps[R]]) -> None:
        self.plan = plan

    @overload
    def __get__(self, caller: None, owner: type) -> Self: ...
    @overload
    def __get__(self, caller: SyncCaller, owner: type) -> Callable[P, R]: ...
    @overload
    def __get__(self, caller: AsyncCaller, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, caller: object, owner: type) -> Any:
        plan = self.plan
        if isinstance(caller, AsyncCaller):

            async def awaited(*args: Any, **kwargs: Any) -> Any:
                return await caller._run(plan(*args, **kwargs))

            return functools.wraps(plan)(awaited)
        if isinstance(caller, SyncCaller):

            def taken(*args: Any, **kwargs: Any) -> Any:
                return caller._run(plan(*args, **kwargs))

            return functools.wraps(plan)(taken)
        return self


class ItemsCall(Generic[P, T]):
    """A call that answers item after item (pages of a List call, or a stream): an iterator on
    a Client, an async iterator on an AsyncClient."""

    def __init__(self, plan: Callable[P, Items[T]]) -> None:
        self.plan = plan

    @overload
    def __get__(self, caller: None, owner: type) -> Self: ...
    @overload
    def __get__(self, caller: SyncCaller, owner: type) -> Callable[P, Generator[T, None, None]]: ...
    @overload
    def __get__(self, caller: AsyncCaller, owner: type) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, caller: object, owner: type) -> Any:
        plan = self.plan
        if isinstance(caller, SyncCaller | AsyncCaller):

            def items(*args: Any, **kwargs: Any) -> Any:
                return caller._items(plan(*args, **kwargs))

            return functools.wraps(plan)(items)
        return self


# -- calls that send the request as it is -----------------------------------------------------


def unary(request: type[Req], response: type[Resp]) -> Call[[Req], Resp]:
    """The RPC taking `request`, called with a request and answering its `response`."""
    rpc = _checked(request, response)

    def plan(message: Req) -> Steps[Resp]:
        answer: Resp = yield Unary(message)
        return answer

    plan.__doc__ = f"Calls {rpc.path} with the request; its response."
    return Call(plan)


def paged(request: type[Req], item: type[T]) -> ItemsCall[[Req], T]:
    """The List RPC taking `request`, called with a request and answering every `item` of
    every page from the request's page on."""
    rpc = rpc_of(request)
    fields = [f.name for f in rpc.method.output_type.fields
              if f.message_type is getattr(item, "DESCRIPTOR", None)]  # fmt: skip
    if len(fields) != 1 or "next_page_token" not in rpc.method.output_type.fields_by_name:
        raise TypeError(f"{rpc.path} does not answer pages of {item.__name__}")

    def plan(message: Req) -> Items[T]:
        return Pages(message, fields[0])

    plan.__doc__ = f"Every {item.__name__} of {rpc.path}, page after page."
    return ItemsCall(plan)


def _checked(request: type[Message], response: type[Message]) -> Rpc:
    rpc = rpc_of(request)
    if rpc.response is not response or rpc.method.client_streaming:
        raise TypeError(f"{rpc.path} does not answer a {response.__name__} to one request")
    return rpc
