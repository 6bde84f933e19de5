-- inputs: bid
-- Not a Nexmark query: bids per auction in a 10-second tumbling window, the "tumbling count per
-- auction" that the Flink and Arroyo figures in issue 8 were measured on.
CREATE TABLE tumble_count AS
  SELECT auction, COUNT(*) AS num FROM bid
  WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY auction EMIT FINAL;
