-- inputs: bid
-- q7: highest bid: the bids whose price is the highest of their 10-second tumbling window. The
-- maximum per window (EMIT FINAL, the window number also in the value), read back from its topic
-- as a plain stream (ksqlDB joins a windowed source only with one windowed alike), then joined
-- with the bids on the price, keeping the bids of the same window.
CREATE TABLE q7_max AS
  SELECT date_time / 10000 AS w, AS_VALUE(date_time / 10000) AS win, MAX(price) AS maxprice FROM bid
  WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS)
  GROUP BY date_time / 10000 EMIT FINAL;
CREATE STREAM q7_max_s (win BIGINT, maxprice BIGINT)
  WITH (KAFKA_TOPIC='Q7_MAX', VALUE_FORMAT='JSON');
CREATE STREAM nexmark_q7 AS
  SELECT B.auction AS auction, B.price AS price, B.bidder AS bidder, B.date_time AS date_time, B.extra AS extra
  FROM bid B JOIN q7_max_s M WITHIN 20 SECONDS ON B.price = M.maxprice
  WHERE B.date_time / 10000 = M.win;
