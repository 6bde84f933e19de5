-- inputs: bid
-- q2: selection: bids on some auctions.
CREATE STREAM nexmark_q2 AS SELECT auction, price FROM bid WHERE auction % 123 = 0;
