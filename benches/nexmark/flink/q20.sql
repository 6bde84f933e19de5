SELECT auction, bidder, price, channel, url, B.`dateTime`, B.extra,
  item_name, description, initial_bid, reserve, A.`dateTime`, expires, seller, category, A.extra
FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id
WHERE A.category = 10
