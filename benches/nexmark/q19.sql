-- inputs: bid
-- q19: the ten highest bids of each auction. Flink keeps the top rows with ROW_NUMBER(); here the
-- ten highest prices per auction are one array (TOPK).
CREATE TABLE nexmark_q19 AS SELECT auction, TOPK(price, 10) AS top_prices FROM bid GROUP BY auction;
