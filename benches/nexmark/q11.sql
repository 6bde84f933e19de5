-- inputs: bid
-- q11: user sessions: bids per bidder in a session window with a 10-second gap. Sessions emit
-- changes (EMIT FINAL is not supported for SESSION windows); Flink emits each session once.
CREATE TABLE nexmark_q11 AS
  SELECT bidder, COUNT(*) AS bid_count FROM bid
  WINDOW SESSION (10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY bidder;
