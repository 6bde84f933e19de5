-- inputs: bid
-- q18: the last bid of each bidder on each auction. Flink deduplicates with ROW_NUMBER() over
-- (bidder, auction) ordered by time; in ksqlDB's SQL that is LATEST_BY_OFFSET per key.
CREATE TABLE nexmark_q18 WITH (KEY_FORMAT='JSON') AS
  SELECT bidder, auction, LATEST_BY_OFFSET(price) AS price, LATEST_BY_OFFSET(channel) AS channel,
    LATEST_BY_OFFSET(url) AS url, LATEST_BY_OFFSET(date_time) AS date_time, LATEST_BY_OFFSET(extra) AS extra
  FROM bid GROUP BY bidder, auction;
