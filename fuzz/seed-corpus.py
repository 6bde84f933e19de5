#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (run from the repository root):
fuzz/corpus/sql gets every statement block of sql-tests/slt and the statements of each
../shared/ksqldb-qtt case; fuzz/corpus/decode gets a few records per format selector byte."""
import glob
import hashlib
import json
import os


def put(directory, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def slt_statements():
    for path in glob.glob("sql-tests/slt/**/*.slt", recursive=True):
        for block in open(path).read().split("\n\n"):
            lines = block.strip().split("\n")
            if not lines or not lines[0].startswith(("statement", "query")):
                continue
            sql = []
            for line in lines[1:]:
                if line.startswith("----"):
                    break
                sql.append(line)
            if "\n".join(sql).strip():
                yield "\n".join(sql).strip()


def qtt_statements():
    for path in glob.glob("../shared/ksqldb-qtt/**/*.json", recursive=True):
        try:
            doc = json.load(open(path))
        except (ValueError, UnicodeDecodeError):
            continue
        for case in doc.get("tests", []) if isinstance(doc, dict) else []:
            statements = case.get("statements") or []
            if statements:
                yield "\n".join(s if s.rstrip().endswith(";") else s + ";" for s in statements)


for text in list(slt_statements()) + list(qtt_statements()):
    put("fuzz/corpus/sql", text.encode())

RECORDS = [b'{"I":1,"B":2,"D":1.5,"S":"x","Z":true}', b'{"i":null,"s":"\\u00e9"}', b'1,2,3.5,"a,b",true',
           b'"q""x"', b'hello', b'[1,2]', b'{"S":{"a":[1,{"b":2}]}}', b'-12', b'1e309',
           b'\x00\x00\x00\x07', b'\x00\x00\x00\x00\x00\x00\x00\x01']
for selector in range(32):
    for record in RECORDS:
        put("fuzz/corpus/decode", bytes([selector]) + record + b"\xff" + record)
