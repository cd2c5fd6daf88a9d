"""Every RPC declares its right (or that it is public) in its contract: the
`interops.auth.v1.access` method option, which the node reads at start, refusing to start when a
method declares none, and which server reflection shows to anyone."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import grpc
import interops
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from interops.auth.v1 import auth_pb2

from registry.kernel import rights
from server.node import SERVICES
from server.rpc.auth_interceptor import UndeclaredAccess, declared_access, method_rights
from tests.running_node import RunningNode

REGISTRY = "interops.registry.v1.RegistryService"


def _contract_methods() -> Iterator[MethodDescriptor]:
    """Every method of every service in the generated code of our contracts."""
    for module in pkgutil.walk_packages(interops.__path__, "interops."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            for service in descriptor.services_by_name.values():
                yield from service.methods


def test_every_method_of_every_contract_declares_its_access() -> None:
    methods = list(_contract_methods())
    assert len(methods) > 50
    undeclared = [
        f"{m.containing_service.full_name}/{m.name}"
        for m in methods
        if not m.GetOptions().HasExtension(auth_pb2.access)
    ]
    assert undeclared == []
    for method in methods:
        declared_access(method)  # a right with its name, or public: raises otherwise
    assert {m.containing_service.full_name for m in methods} == set(SERVICES)


def test_every_right_has_its_token_name() -> None:
    values = [v for v in auth_pb2.Right.DESCRIPTOR.values if v.number != 0]
    names = [rights.right_name(auth_pb2.Right.Value(v.name)) for v in values]
    assert len(set(names)) == len(values)
    assert rights.REGISTRY_READ == "registry.read"
    assert rights.SERVICE_BONUS_MALUS == "service.bonus-malus"


def test_the_map_says_what_the_old_table_said() -> None:
    access = method_rights(SERVICES)
    assert access[f"/{REGISTRY}/ImportStock"] == "registry.import"
    assert access[f"/{REGISTRY}/GetEstablishment"] == "registry.read"
    assert access["/interops.operation.v1.OperationService/WatchOperation"] == "registry.import"
    assert access["/interops.notify.v1.NotificationService/OpenLink"] is None
    assert access["/interops.notify.v1.NotificationService/Send"] == "notify.send"
    assert access["/interops.notify.v1.NotificationService/ListNotifications"] == "notify.read"
    habilitation = "/interops.habilitation.v1.HabilitationService"
    assert access[f"{habilitation}/CheckAccess"] == "habilitation.check"
    assert access[f"{habilitation}/GrantHabilitation"] == "habilitation.manage"
    assert access[f"{habilitation}/RegisterCompany"] is None
    assert access["/interops.token.v1.TokenService/IssueToken"] is None
    assert access["/interops.dsn.v1.DeliveryService/PostReturn"] == "dsn.deliveries"
    assert access["/interops.nomenclature.v1.NomenclatureService/PublishVersion"] == (
        "nomenclature.publish"
    )


def test_a_method_without_access_stops_the_node() -> None:
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]
    with pytest.raises(UndeclaredAccess, match="Health/Check declares no access"):
        declared_access(health.methods_by_name["Check"])
    with pytest.raises(UndeclaredAccess):
        method_rights([*SERVICES, health.full_name])


def test_reflection_shows_each_method_right(node: RunningNode) -> None:
    assert node.node.rights == method_rights(SERVICES)
    with grpc.insecure_channel(node.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=REGISTRY)
        answer = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    registry = next(f for f in files if f.package == "interops.registry.v1")
    assert "interops/auth/v1/auth.proto" in registry.dependency
    service = next(s for s in registry.service if s.name == "RegistryService")
    methods = {m.name: m.options.Extensions[auth_pb2.access] for m in service.method}
    assert methods["ImportStock"].right == auth_pb2.RIGHT_REGISTRY_IMPORT
    assert methods["GetCompany"].right == auth_pb2.RIGHT_REGISTRY_READ
