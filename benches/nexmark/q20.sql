-- inputs: bid auction
-- q20: expand bids with their auction's details, for auctions in category 10. Auctions are a table
-- keyed by id (Flink runs a regular join).
CREATE STREAM nexmark_q20 AS
  SELECT B.auction AS auction, B.bidder AS bidder, B.price AS price, B.channel AS channel, B.url AS url,
    B.date_time AS date_time, A.item_name AS item_name, A.description AS description,
    A.initial_bid AS initial_bid, A.reserve AS reserve, A.expires AS expires, A.seller AS seller,
    A.category AS category
  FROM bid B JOIN auction_t A ON B.auction = A.id
  WHERE A.category = 10;
