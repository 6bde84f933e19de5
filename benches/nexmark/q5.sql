-- inputs: bid
-- q5: hot items: bids per auction in a hopping window (10 s every 2 s), then the highest count per
-- window. Flink's q5 then joins the counts with the maxima to name the auctions; here the last
-- step is missing (the maxima are computed, the join back is not).
CREATE TABLE q5_counts AS
  SELECT auction, COUNT(*) AS num FROM bid
  WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 0 SECONDS)
  GROUP BY auction EMIT FINAL;
CREATE STREAM q5_counts_s (auction BIGINT KEY, num BIGINT)
  WITH (KAFKA_TOPIC='Q5_COUNTS', VALUE_FORMAT='JSON', WINDOW_TYPE='HOPPING', WINDOW_SIZE='10 SECONDS');
CREATE TABLE nexmark_q5 AS
  SELECT WINDOWSTART AS starttime, MAX(num) AS maxn FROM q5_counts_s GROUP BY WINDOWSTART;
