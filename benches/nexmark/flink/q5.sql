SELECT starttime, MAX(num) AS maxn FROM (
  SELECT auction, COUNT(*) AS num, window_start AS starttime
  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
  GROUP BY auction, window_start, window_end
) GROUP BY starttime
