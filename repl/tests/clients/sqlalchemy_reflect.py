"""SQLAlchemy's reflection over psycopg against `eddy server`: streams and tables are tables of
schema public, with their columns and types. Usage: sqlalchemy_reflect.py PG_PORT."""
import sys

from sqlalchemy import create_engine, inspect, text

port = int(sys.argv[1])
engine = create_engine(f"postgresql+psycopg://eddy@127.0.0.1:{port}/eddy")
insp = inspect(engine)
names = insp.get_table_names()
assert {"CLICKS", "PER_USER"} <= set(names), names
print("ok tables", sorted(names))
assert insp.get_schema_names() == ["information_schema", "public"], insp.get_schema_names()
cols = insp.get_columns("CLICKS")
got = [(c["name"], str(c["type"]), c["nullable"]) for c in cols]
assert got == [("ID", "INTEGER", True), ("PAGE", "TEXT", True)], got
cols = insp.get_columns("PER_USER")
got = [(c["name"], str(c["type"]), c["nullable"]) for c in cols]
assert got == [("ID", "INTEGER", False), ("N", "BIGINT", True)], got
print("ok columns")
assert insp.has_table("PER_USER") and not insp.has_table("NOPE")
print("ok has_table")
with engine.connect() as c:
    rows = c.execute(text('SELECT "ID", "N" FROM "PER_USER" WHERE "ID" = :id'), {"id": 1}).all()
    assert [tuple(r) for r in rows] == [(1, 2)], rows
print("ok query through SQLAlchemy")
