-- inputs: auction bid
-- q4: average closing price per category: the winning (highest) bid of each auction among the bids
-- made before it expired, then the average of those per category. Without subqueries this is a
-- chain of three persistent queries: a windowed join, a MAX per auction, an AVG per category over
-- that table's changelog.
CREATE STREAM q4_bids AS
  SELECT A.id AS id, A.category AS category, B.price AS price
  FROM auction A JOIN bid B WITHIN (0 SECONDS, 10 SECONDS) ON A.id = B.auction
  WHERE B.date_time >= A.date_time AND B.date_time <= A.expires;
CREATE TABLE q4_final AS
  SELECT id, LATEST_BY_OFFSET(category) AS category, MAX(price) AS final FROM q4_bids GROUP BY id;
CREATE TABLE nexmark_q4 AS SELECT category, AVG(final) AS avg_final FROM q4_final GROUP BY category;
