-- inputs: bid
-- q14: calculation: time-of-day class and a character count (HOUR and count_char spelled with
-- arithmetic and REPLACE).
CREATE STREAM nexmark_q14 AS
  SELECT auction, bidder, 0.908 * price AS price,
    CASE
      WHEN (date_time / 3600000) % 24 >= 8 AND (date_time / 3600000) % 24 <= 18 THEN 'dayTime'
      WHEN (date_time / 3600000) % 24 <= 6 OR (date_time / 3600000) % 24 >= 20 THEN 'nightTime'
      ELSE 'otherTime'
    END AS bid_time_type,
    date_time, extra, LEN(extra) - LEN(REPLACE(extra, 'c', '')) AS c_counts
  FROM bid
  WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000;
