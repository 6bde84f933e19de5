-- inputs: bid
-- q0: pass-through. Measures reading, decoding, encoding and writing with no computation.
CREATE STREAM nexmark_q0 AS SELECT auction, bidder, price, date_time, extra FROM bid;
