-- ksqlDB's SQL test files (run-ksql-test) run with `eddy test`: the example of ksqlDB's
-- "How to test an application" guide, and assertions of each kind.

--@test: Passing test

CREATE STREAM s (id INT KEY, foo INT) WITH (kafka_topic='s', value_format='JSON');
CREATE TABLE t (id INT PRIMARY KEY, bar INT) WITH (kafka_topic='t', value_format='JSON');

CREATE STREAM j AS SELECT s.id, s.foo, t.bar FROM s JOIN t ON s.id = t.id;

INSERT INTO t (rowtime, id, bar) VALUES (1, 1, 1);
INSERT INTO s (rowtime, id, foo) VALUES (1, 1, 2);

ASSERT VALUES j (rowtime, s_id, foo, bar) VALUES (1, 1, 2, 1);

--@test: Failing test
--@expected.error: io.confluent.ksql.util.KsqlException
--@expected.message: columns

CREATE STREAM a (id INT KEY, col1 INT, col2 INT) WITH (kafka_topic='a', value_format='JSON');
CREATE STREAM b AS SELECT id, col1, col2 FROM a;

INSERT INTO a (id, col1) VALUES (3, 5);

ASSERT VALUES b (id, col1) VALUES (3, 5);

CREATE OR REPLACE STREAM b AS SELECT id, col1 FROM a;

--@test: records are read in order, tombstones and schemas asserted

CREATE STREAM events (id INT KEY, v INT) WITH (kafka_topic='events', value_format='JSON');
CREATE TABLE latest AS SELECT id, LATEST_BY_OFFSET(v) AS v FROM events GROUP BY id HAVING LATEST_BY_OFFSET(v) > 0;

INSERT INTO events (id, v) VALUES (1, 10);
INSERT INTO events (id, v) VALUES (2, 20);
INSERT INTO events (id, v) VALUES (1, -1);

ASSERT VALUES latest (id, v) VALUES (1, 10);
ASSERT VALUES latest (id, v) VALUES (2, 20);
ASSERT NULL VALUES latest (id) KEY (1);
ASSERT TABLE latest (id INT PRIMARY KEY, v INT) WITH (kafka_topic='LATEST');
ASSERT STREAM events (id INT KEY, v INT);

--@test: a wrong expectation fails the test
--@expected.message: Expected record does not match actual

CREATE STREAM w (id INT KEY, v STRING) WITH (kafka_topic='w', value_format='JSON');
INSERT INTO w (id, v) VALUES (1, 'one');
ASSERT VALUES w (id, v) VALUES (1, 'uno');

--@test: no record where one is expected fails the test
--@expected.message: there are no more records

CREATE STREAM e (id INT KEY, v STRING) WITH (kafka_topic='e', value_format='JSON');
ASSERT VALUES e (id, v) VALUES (1, 'one');
