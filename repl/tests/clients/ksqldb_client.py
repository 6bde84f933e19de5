"""The `ksqldb` Python client (HTTP/2 by prior knowledge through httpx for queries and inserts)
against `eddy server`. Usage: ksqldb_client.py HTTP_URL."""
import asyncio
import sys

from ksqldb import KSQLdbClient

url = sys.argv[1]
client = KSQLdbClient(url)
r = client.ksql("CREATE STREAM orders (id INT KEY, item STRING, qty INT) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);")
assert r[0]["commandStatus"]["message"] == "Stream created", r
print("ok ksql")

acks = client.inserts_stream("ORDERS", [{"ID": 1, "ITEM": "apple", "QTY": 3}, {"ID": 2, "ITEM": "pear", "QTY": 1}])
assert acks == [{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}], acks
print("ok inserts_stream")

client.ksql("CREATE TABLE order_totals AS SELECT item, SUM(qty) AS total FROM orders GROUP BY item;", {"auto.offset.reset": "earliest"})
rows = client.query_sync("SELECT * FROM ORDER_TOTALS WHERE ITEM = 'apple';")
assert rows[0]["columnNames"] == ["ITEM", "TOTAL"], rows
assert rows[1:] == [["apple", 3]], rows
print("ok pull query")

rows = client.query_sync("SELECT COUNT(*) AS n, SUM(total) AS t FROM ORDER_TOTALS;")
assert rows[1:] == [[2, 4]], rows
print("ok full-SQL pull query")


async def push():
    seen = []
    async for row in client.query_async("SELECT * FROM ORDERS EMIT CHANGES LIMIT 2;", {"auto.offset.reset": "earliest"}, timeout=20):
        seen.append(row)
    return seen


seen = asyncio.run(push())
assert seen[0]["columnNames"] == ["ID", "ITEM", "QTY"], seen
assert sorted(map(tuple, seen[1:])) == [(1, "apple", 3), (2, "pear", 1)], seen
print("ok push query")


async def close():
    seen = []
    async for row in client.query_async("SELECT * FROM ORDERS EMIT CHANGES;", {"auto.offset.reset": "earliest"}, timeout=20):
        seen.append(row)
        if len(seen) == 3:
            # /close-query ends the stream; the loop then ends.
            assert client.close_query(seen[0]["queryId"])
    return seen


seen = asyncio.run(close())
assert len(seen) == 3, seen
print("ok close_query")
