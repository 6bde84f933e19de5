-- inputs: bid
-- q22: the first three directories of each bid's URL (Flink's SPLIT_INDEX(url, '/', 3..5); ksqlDB
-- arrays are 1-based).
CREATE STREAM nexmark_q22 AS
  SELECT auction, bidder, price, channel,
    SPLIT(url, '/')[4] AS dir1, SPLIT(url, '/')[5] AS dir2, SPLIT(url, '/')[6] AS dir3
  FROM bid;
