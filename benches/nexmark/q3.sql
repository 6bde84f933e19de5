-- inputs: auction person
-- q3: local item suggestion: who sells in category 10 in Oregon, Idaho or California.
-- Flink runs this as a regular (unbounded) join; here persons are a table keyed by id and each
-- auction is joined with its seller as known at the auction's event time (persons always come
-- first, except the few auctions naming a person id not yet created).
CREATE STREAM nexmark_q3 AS
  SELECT A.seller AS seller, P.name AS name, P.city AS city, P.state AS state, A.id AS id
  FROM auction A JOIN person_t P ON A.seller = P.id
  WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
