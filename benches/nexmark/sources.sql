-- Nexmark sources over the topics written by `eddy nexmark` (flat JSON, see engine/src/nexmark).
-- Record timestamps are the events' date_time, so event time is ROWTIME without a TIMESTAMP column.
-- person and auction records are keyed by id (BIGINT), bids by auction.
CREATE STREAM person (id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING,
    state STRING, date_time BIGINT, extra STRING)
  WITH (KAFKA_TOPIC='person', VALUE_FORMAT='JSON');
CREATE STREAM auction (id BIGINT, item_name STRING, description STRING, initial_bid BIGINT, reserve BIGINT,
    date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra STRING)
  WITH (KAFKA_TOPIC='auction', VALUE_FORMAT='JSON');
CREATE STREAM bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
    date_time BIGINT, extra STRING)
  WITH (KAFKA_TOPIC='bid', VALUE_FORMAT='JSON');
-- The same topics read as tables (latest row per id), for the joins that Flink runs as regular joins.
CREATE TABLE person_t (id BIGINT PRIMARY KEY, name STRING, email_address STRING, credit_card STRING,
    city STRING, state STRING, date_time BIGINT, extra STRING)
  WITH (KAFKA_TOPIC='person', VALUE_FORMAT='JSON');
CREATE TABLE auction_t (id BIGINT PRIMARY KEY, item_name STRING, description STRING, initial_bid BIGINT,
    reserve BIGINT, date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra STRING)
  WITH (KAFKA_TOPIC='auction', VALUE_FORMAT='JSON');
SET 'auto.offset.reset'='earliest';
