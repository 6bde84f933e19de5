-- inputs: bid
-- q12: bids per bidder in a 10-second processing-time window. Eddy has no processing-time
-- attribute; the first query stamps each bid with the time it is processed (UNIX_TIMESTAMP()) and
-- makes that the record time, so the window of the second query is a processing-time window.
CREATE STREAM q12_ptime WITH (TIMESTAMP='p_time') AS
  SELECT bidder, UNIX_TIMESTAMP() AS p_time FROM bid;
CREATE TABLE nexmark_q12 AS
  SELECT bidder, COUNT(*) AS bid_count FROM q12_ptime
  WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY bidder;
