use std::collections::HashMap;

use super::*;

fn events(config: GeneratorConfig, n: u64) -> Vec<(EventMeta, serde_json::Value)> {
    let mut g = Generator::new(config);
    let mut buf = Vec::new();
    (0..n)
        .map(|_| {
            buf.clear();
            let m = g.next_json(&mut buf);
            (m, serde_json::from_slice(&buf).expect("valid JSON"))
        })
        .collect()
}

#[test]
fn same_seed_same_events_other_seed_other_events() {
    let a = events(GeneratorConfig::default(), 2000);
    let b = events(GeneratorConfig::default(), 2000);
    let c = events(GeneratorConfig { seed: 7, ..Default::default() }, 2000);
    assert!(a.iter().zip(&b).all(|(x, y)| x.1 == y.1));
    assert!(a.iter().zip(&c).any(|(x, y)| x.1 != y.1));
}

#[test]
fn starting_midway_gives_the_same_events() {
    let all = events(GeneratorConfig::default(), 300);
    let mut g = Generator::starting_at(GeneratorConfig::default(), 200);
    let mut buf = Vec::new();
    for (_, want) in &all[200..] {
        buf.clear();
        g.next_json(&mut buf);
        assert_eq!(&serde_json::from_slice::<serde_json::Value>(&buf).unwrap(), want);
    }
}

#[test]
fn proportions_are_1_3_46() {
    let evs = events(GeneratorConfig::default(), 50_000);
    let mut counts: HashMap<EventKind, u64> = HashMap::new();
    for (m, _) in &evs {
        *counts.entry(m.kind).or_default() += 1;
    }
    assert_eq!(counts[&EventKind::Person], 1000);
    assert_eq!(counts[&EventKind::Auction], 3000);
    assert_eq!(counts[&EventKind::Bid], 46_000);
}

#[test]
fn ids_grow_and_bids_name_recent_auctions_hot_ones_mostly() {
    let evs = events(GeneratorConfig::default(), 100_000);
    let (mut last_person, mut last_auction) = (0u64, 0u64);
    let mut per_auction: HashMap<u64, u64> = HashMap::new();
    let mut bids = 0;
    for (m, v) in &evs {
        match m.kind {
            EventKind::Person => {
                let id = v["id"].as_u64().unwrap();
                assert!(id > last_person);
                last_person = id;
                assert!(v["email_address"].as_str().unwrap().ends_with(".com"));
            }
            EventKind::Auction => {
                let id = v["id"].as_u64().unwrap();
                assert!(id > last_auction);
                last_auction = id;
                assert!(v["reserve"].as_u64() >= v["initial_bid"].as_u64());
                assert!(v["expires"].as_i64().unwrap() > v["date_time"].as_i64().unwrap());
                assert!((10..15).contains(&v["category"].as_u64().unwrap()));
            }
            EventKind::Bid => {
                let a = v["auction"].as_u64().unwrap();
                assert!(a <= last_auction + AUCTION_ID_LEAD && a + NUM_IN_FLIGHT_AUCTIONS + HOT_BLOCK >= last_auction);
                assert!(v["bidder"].as_u64().unwrap() <= last_person + PERSON_ID_LEAD);
                assert!(v["url"].as_str().unwrap().starts_with("https://www.nexmark.com/"));
                *per_auction.entry(a).or_default() += 1;
                bids += 1;
            }
        }
        assert_eq!(v["date_time"].as_i64().unwrap(), m.timestamp);
    }
    // Half the bids go to hot auctions (one per block of 100 auctions).
    let hot: u64 = per_auction.iter().filter(|(a, _)| (*a - FIRST_AUCTION_ID).is_multiple_of(HOT_BLOCK)).map(|(_, n)| n).sum();
    let share = hot as f64 / bids as f64;
    assert!((0.45..0.6).contains(&share), "hot share {share}");
}

#[test]
fn event_time_follows_the_rate_and_sizes_the_averages() {
    let evs = events(GeneratorConfig { rate: 1000, ..Default::default() }, 10_000);
    let base = GeneratorConfig::default().base_time_ms;
    assert_eq!(evs[0].0.timestamp, base);
    assert_eq!(evs[9_999].0.timestamp, base + 9_999);
    let mut sizes: HashMap<EventKind, (usize, usize)> = HashMap::new();
    for (m, v) in &evs {
        let e = sizes.entry(m.kind).or_default();
        e.0 += v.to_string().len();
        e.1 += 1;
    }
    let avg = |k| sizes[&k].0 as f64 / sizes[&k].1 as f64;
    assert!((180.0..240.0).contains(&avg(EventKind::Person)), "{}", avg(EventKind::Person));
    assert!((450.0..560.0).contains(&avg(EventKind::Auction)), "{}", avg(EventKind::Auction));
    assert!((100.0..220.0).contains(&avg(EventKind::Bid)), "{}", avg(EventKind::Bid));
}
