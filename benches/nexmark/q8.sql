-- inputs: person auction
-- q8: monitor new users: persons who opened an auction in the same 10-second tumbling window in
-- which they registered. A windowed join; the same-window condition is a filter on event times.
-- Flink's q8 first groups each side per window (one row per person and window); here each such
-- auction gives a row.
CREATE STREAM nexmark_q8 AS
  SELECT P.id AS id, P.name AS name, (P.ROWTIME / 10000) * 10000 AS starttime
  FROM person P JOIN auction A WITHIN 10 SECONDS ON P.id = A.seller
  WHERE P.ROWTIME / 10000 = A.ROWTIME / 10000;
