"""psycopg 3 against `eddy server`: server-side parameters ($n over the extended protocol, text
and binary), a wrong-typed parameter, and a catalog query the session survives.
Usage: psycopg_params.py PG_PORT. Prints one line per check; exits non-zero on a failure."""
import sys

import psycopg

port = int(sys.argv[1])
conn = psycopg.connect(host="127.0.0.1", port=port, user="eddy", dbname="eddy", autocommit=True)
cur = conn.cursor()

# Parameters bind $1 with a type (int2 for a small Python int) over Parse/Bind.
cur.execute("SELECT ID, N FROM PER_USER WHERE ID = %s", (2,))
assert cur.fetchall() == [(2, 1)], "pull query with a parameter"
print("ok pull with parameter")

cur.execute("SELECT ID, N FROM PER_USER WHERE ID IN (%s, %s) ORDER BY ID", (1, 2))
assert cur.fetchall() == [(1, 2), (2, 1)], "IN list of parameters"
print("ok IN parameters")

# Binary parameters and binary results.
bcur = conn.cursor(binary=True)
bcur.execute("SELECT ID, N FROM PER_USER WHERE ID = %s", (1,))
assert bcur.fetchall() == [(1, 2)], "binary format"
print("ok binary parameters")

# Strings are sent untyped; the column's type is inferred.
cur.execute("INSERT INTO CLICKS (ID, PAGE) VALUES (%s, %s)", (7, "it's"))
cur.execute("SELECT PAGE FROM CLICKS WHERE ID = %s LIMIT 1", (7,))
assert cur.fetchall() == [("it's",)], "string parameter round trip"
print("ok string parameter")

# A parameter of the wrong type: a clear error, and the session carries on.
try:
    cur.execute("SELECT * FROM PER_USER WHERE ID = %s", ("not a number",))
    raise AssertionError("a wrong-typed parameter was accepted")
except psycopg.errors.InvalidTextRepresentation as e:
    assert "invalid input syntax for type integer" in str(e) and "$1" in str(e), str(e)
print("ok wrong type refused")

# A catalog query Eddy cannot answer: a clear error, the session carries on.
try:
    cur.execute("SELECT * FROM pg_catalog.pg_no_such_catalog")
    raise AssertionError("an unknown catalog table was answered")
except psycopg.errors.FeatureNotSupported as e:
    assert "cannot answer this catalog query" in str(e), str(e)
cur.execute("SELECT ID, N FROM PER_USER WHERE ID = %s", (1,))
assert cur.fetchall() == [(1, 2)], "session after errors"
print("ok session carries on")
