"""The KServe V2 gRPC messages of inference.proto (and the health protocol's, health.proto), built from their
compiled descriptors in a pool of their own.

``make proto`` compiles inference.proto into inference.desc and health.proto into health.desc (each a
``FileDescriptorSet``, committed beside it). The message classes are built from them here in a private
descriptor pool rather than protobuf's default one, so the service can share a process with a client library
that defines the same package (tritonclient defines ``inference``, grpcio-health-checking ``grpc.health.v1``,
and two modules defining one package cannot both load into the default pool): the bench's gRPC client and the
tests run beside tritonclient.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

DESCRIPTOR_SET = Path(__file__).with_name("inference.desc")
HEALTH_DESCRIPTOR_SET = Path(__file__).with_name("health.desc")  # grpc.health.v1 (health.proto)

_pool = descriptor_pool.DescriptorPool()
for _set in (DESCRIPTOR_SET, HEALTH_DESCRIPTOR_SET):
    for _file in descriptor_pb2.FileDescriptorSet.FromString(_set.read_bytes()).file:
        _pool.Add(_file)
DESCRIPTOR = _pool.FindFileByName("inference.proto")
HEALTH_DESCRIPTOR = _pool.FindFileByName("health.proto")


def _message(name: str, file: descriptor_pool.descriptor.FileDescriptor = DESCRIPTOR) -> type[Message]:
    return message_factory.GetMessageClass(file.message_types_by_name[name])


ServerLiveRequest = _message("ServerLiveRequest")
ServerLiveResponse = _message("ServerLiveResponse")
ServerReadyRequest = _message("ServerReadyRequest")
ServerReadyResponse = _message("ServerReadyResponse")
ModelReadyRequest = _message("ModelReadyRequest")
ModelReadyResponse = _message("ModelReadyResponse")
ServerMetadataRequest = _message("ServerMetadataRequest")
ServerMetadataResponse = _message("ServerMetadataResponse")
ModelMetadataRequest = _message("ModelMetadataRequest")
ModelMetadataResponse = _message("ModelMetadataResponse")
ModelInferRequest = _message("ModelInferRequest")
ModelInferResponse = _message("ModelInferResponse")
ModelConfigRequest = _message("ModelConfigRequest")
ModelConfigResponse = _message("ModelConfigResponse")
ModelStatisticsRequest = _message("ModelStatisticsRequest")
ModelStatisticsResponse = _message("ModelStatisticsResponse")
HealthCheckRequest = _message("HealthCheckRequest", HEALTH_DESCRIPTOR)
HealthCheckResponse = _message("HealthCheckResponse", HEALTH_DESCRIPTOR)
