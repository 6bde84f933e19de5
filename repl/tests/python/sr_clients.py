"""Confluent's own Python clients against Eddy's embedded schema registry.

Records are serialized with confluent-kafka's AvroSerializer and ProtobufSerializer (which
register their schemas in Eddy's registry), written to topics through Eddy's REST-proxy-style
topic API, read by persistent queries that infer their columns from the registry, and the
queries' output is decoded with the same library's deserializers (Avro by the schema id each
record carries, fetched from Eddy's registry).

Usage: sr_clients.py BASE_URL   (exits non-zero with a message on the first mismatch)
"""

import base64
import json
import sys
import time
import urllib.request

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

BASE = sys.argv[1].rstrip("/")


def request(method, path, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"content-type": content_type})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def ksql(sql):
    return request("POST", "/ksql", {"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest"}})


def produce(topic, values):
    records = [{"key": None, "value": base64.b64encode(v).decode()} for v in values]
    request("POST", f"/topics/{topic}", {"records": records}, "application/vnd.kafka.binary.v2+json")


def read(topic, n, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            recs = request("GET", f"/topics/{topic}/partitions/0/records?offset=0&limit=1000")
        except urllib.error.HTTPError:
            recs = []  # the query has not created its topic yet
        if len(recs) >= n or time.time() > deadline:
            return [base64.b64decode(r["value"]) for r in recs]
        time.sleep(0.2)


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}: expected {want!r}, got {got!r}")
    print(f"ok: {what}")


registry = SchemaRegistryClient({"url": BASE})

# --- Avro: AvroSerializer registers orders-value; the stream infers its columns from it.
order_schema = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "item", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
})
serialize = AvroSerializer(registry, order_schema)
orders = [
    {"id": 1, "item": "pen", "price": 2.5, "tags": ["office"], "note": None},
    {"id": 2, "item": "desk", "price": 120.0, "tags": ["office", "big"], "note": "fragile"},
    {"id": 3, "item": "lamp", "price": 35.25, "tags": [], "note": None},
]
produce("orders", [serialize(o, SerializationContext("orders", MessageField.VALUE)) for o in orders])
ksql("CREATE STREAM orders WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='AVRO');")
described = request("POST", "/ksql", {"ksql": "DESCRIBE orders;"})
print("DESCRIBE orders:", json.dumps(described)[:400])
ksql("CREATE STREAM big_orders WITH (KAFKA_TOPIC='big_orders', VALUE_FORMAT='AVRO') AS "
     "SELECT id, UCASE(item) AS item, price * 2 AS double_price, tags, note FROM orders WHERE price > 10;")
deserialize = AvroDeserializer(registry)
out = [deserialize(b, SerializationContext("big_orders", MessageField.VALUE)) for b in read("big_orders", 2)]
check("Avro output decoded by AvroDeserializer", out, [
    {"ID": 2, "ITEM": "DESK", "DOUBLE_PRICE": 240.0, "TAGS": ["office", "big"], "NOTE": "fragile"},
    {"ID": 3, "ITEM": "LAMP", "DOUBLE_PRICE": 70.5, "TAGS": [], "NOTE": None},
])
latest = registry.get_latest_version("big_orders-value")
check("output schema name", json.loads(latest.schema.schema_str)["name"], "KsqlDataSourceSchema")

# --- Protobuf: a message class built at runtime (no protoc), ProtobufSerializer registers it.
fdp = descriptor_pb2.FileDescriptorProto(name="reading.proto", package="iot", syntax="proto3")
msg = fdp.message_type.add(name="Reading")
F = descriptor_pb2.FieldDescriptorProto
msg.field.add(name="sensor", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
msg.field.add(name="value", number=2, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
msg.field.add(name="n", number=3, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
Reading = message_factory.GetMessageClass(pool.FindMessageTypeByName("iot.Reading"))
pserialize = ProtobufSerializer(Reading, registry, {"use.deprecated.format": False})
readings = [Reading(sensor="a", value=1.5, n=3), Reading(sensor="b", value=7.25, n=4), Reading(sensor="c", value=9.0)]
produce("readings", [pserialize(r, SerializationContext("readings", MessageField.VALUE)) for r in readings])
ksql("CREATE STREAM readings WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='PROTOBUF');")
ksql("CREATE STREAM hot WITH (KAFKA_TOPIC='hot', VALUE_FORMAT='PROTOBUF') AS "
     "SELECT sensor, value, n + 1 AS next FROM readings WHERE value > 2;")
# Eddy registers the output schema as ksqlDB does; build the class from the same shape.
out_fdp = descriptor_pb2.FileDescriptorProto(name="hot.proto", syntax="proto3")
out_msg = out_fdp.message_type.add(name="ConnectDefault1")
out_msg.field.add(name="SENSOR", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
out_msg.field.add(name="VALUE", number=2, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
out_msg.field.add(name="NEXT", number=3, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
out_pool = descriptor_pool.DescriptorPool()
out_pool.Add(out_fdp)
Hot = message_factory.GetMessageClass(out_pool.FindMessageTypeByName("ConnectDefault1"))
pdeserialize = ProtobufDeserializer(Hot, {"use.deprecated.format": False})
got = [pdeserialize(b, SerializationContext("hot", MessageField.VALUE)) for b in read("hot", 2)]
check("Protobuf output decoded by ProtobufDeserializer",
      [(m.SENSOR, m.VALUE, m.NEXT) for m in got], [("b", 7.25, 5), ("c", 9.0, 1)])
registered = registry.get_latest_version("hot-value").schema
check("output schema type", registered.schema_type, "PROTOBUF")
if "message ConnectDefault1" not in registered.schema_str:
    sys.exit(f"unexpected output schema: {registered.schema_str}")
print("all checks passed")
