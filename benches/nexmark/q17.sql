-- inputs: bid
-- q17: auction statistics per day: counts by price range, MIN, MAX, AVG and SUM of the price.
CREATE TABLE nexmark_q17 WITH (KEY_FORMAT='JSON') AS
  SELECT auction, TIMESTAMPTOSTRING(date_time, 'yyyy-MM-dd', 'UTC') AS day,
    COUNT(*) AS total_bids,
    SUM(CASE WHEN price < 10000 THEN 1 ELSE 0 END) AS rank1_bids,
    SUM(CASE WHEN price >= 10000 AND price < 1000000 THEN 1 ELSE 0 END) AS rank2_bids,
    SUM(CASE WHEN price >= 1000000 THEN 1 ELSE 0 END) AS rank3_bids,
    MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price, SUM(price) AS sum_price
  FROM bid GROUP BY auction, TIMESTAMPTOSTRING(date_time, 'yyyy-MM-dd', 'UTC');
