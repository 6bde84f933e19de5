//! A Nexmark event generator: persons, auctions and bids of an online auction site, following the
//! model of the Nexmark generator that Beam, Flink, RisingWave and Arroyo use.
//!
//! - Event `n` (from 0) is a person, an auction or a bid by its place in each block of 50 events:
//!   1 person, 3 auctions, 46 bids (proportions 1:3:46).
//! - Person ids and auction ids start at 1000 and grow with the events; a bid names an auction and a
//!   bidder among the recent ones. Hot items: with the default ratios, half the bids go to one hot
//!   auction (the first of the latest block of 100 auctions) and three quarters come from a hot
//!   bidder (the first of the latest block of 100 persons); three quarters of the auctions are
//!   sold by a hot seller. Half the bids come from one of four hot channels.
//! - Event time advances by `1 / rate` seconds per event from a fixed base time, so a seed, a rate
//!   and an event count always give the same events.
//! - Every event draws from its own random stream, seeded from (seed, event number): the output
//!   does not depend on how the generator is split or batched.
//!
//! Events are written as flat JSON objects with snake_case field names (as RisingWave names them),
//! one per record, the record timestamp being `date_time` (ms since the epoch):
//! ```text
//! person:  {"id","name","email_address","credit_card","city","state","date_time","extra"}
//! auction: {"id","item_name","description","initial_bid","reserve","date_time","expires","seller","category","extra"}
//! bid:     {"auction","bidder","price","channel","url","date_time","extra"}
//! ```
//! [`load_topics`] appends them to the topics `person`, `auction` and `bid`; person and auction
//! records are keyed by `id` (a BIGINT key: 8 bytes big-endian), bids by `auction`.

use std::sync::Arc;

use storage::{partition_for_key, RecordIn, TopicConfig, TopicLog};

use crate::error::Result;

#[cfg(test)]
mod tests;

/// Events per block, and the share of each kind in a block.
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;
const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
/// Hot auctions, bidders and sellers are the first of each block of this many.
const HOT_BLOCK: u64 = 100;
/// How far past the latest id a "new" id may reach (the person or auction does not exist yet).
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
const CHANNELS: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] =
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];

/// Settings of a generator.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Seed of all random choices.
    pub seed: u64,
    /// Events per second of event time.
    pub rate: u64,
    /// Event time of the first event (ms since the epoch).
    pub base_time_ms: i64,
    /// One in this many bids goes to a random recent auction, the others to the hot one.
    pub hot_auction_ratio: u64,
    /// One in this many bids comes from a random recent person, the others from the hot bidder.
    pub hot_bidder_ratio: u64,
    /// One in this many auctions is sold by a random recent person, the others by the hot seller.
    pub hot_seller_ratio: u64,
    /// One in this many bids comes from one of 10,000 channels, the others from a hot channel.
    pub hot_channel_ratio: u64,
    /// Average size of a person, an auction and a bid in bytes (the `extra` field pads to it).
    pub avg_person_bytes: usize,
    /// See `avg_person_bytes`.
    pub avg_auction_bytes: usize,
    /// See `avg_person_bytes`.
    pub avg_bid_bytes: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            rate: 10_000,
            // 2024-01-01T00:00:00Z
            base_time_ms: 1_704_067_200_000,
            hot_auction_ratio: 2,
            hot_bidder_ratio: 4,
            hot_seller_ratio: 4,
            hot_channel_ratio: 2,
            avg_person_bytes: 200,
            avg_auction_bytes: 500,
            avg_bid_bytes: 100,
        }
    }
}

/// The kind of a Nexmark event, which is also the name of its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new user.
    Person,
    /// A new item for sale.
    Auction,
    /// A bid on an auction.
    Bid,
}

impl EventKind {
    /// The kind of event number `n`.
    pub fn of(n: u64) -> EventKind {
        let off = n % TOTAL_PROPORTION;
        if off < PERSON_PROPORTION {
            EventKind::Person
        } else if off < PERSON_PROPORTION + AUCTION_PROPORTION {
            EventKind::Auction
        } else {
            EventKind::Bid
        }
    }

    /// The topic the event goes to.
    pub fn topic(self) -> &'static str {
        match self {
            EventKind::Person => "person",
            EventKind::Auction => "auction",
            EventKind::Bid => "bid",
        }
    }

    /// All kinds, in topic order.
    pub const ALL: [EventKind; 3] = [EventKind::Person, EventKind::Auction, EventKind::Bid];

    fn index(self) -> usize {
        self as usize
    }
}

/// One generated event, encoded.
#[derive(Debug, Clone, Copy)]
pub struct EventMeta {
    /// Its kind (and topic).
    pub kind: EventKind,
    /// Event time, ms since the epoch (also `date_time`).
    pub timestamp: i64,
    /// Record key: the person or auction id, or the bid's auction.
    pub key: u64,
}

/// A deterministic generator of Nexmark events as JSON.
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
    next: u64,
}

impl Generator {
    /// A generator starting at event 0.
    pub fn new(config: GeneratorConfig) -> Self {
        Generator { config, next: 0 }
    }

    /// A generator starting at event `n`.
    pub fn starting_at(config: GeneratorConfig, n: u64) -> Self {
        Generator { config, next: n }
    }

    /// The number of the next event.
    pub fn next_event_number(&self) -> u64 {
        self.next
    }

    /// The event time of event `n`.
    pub fn timestamp_of(&self, n: u64) -> i64 {
        let rate = self.config.rate.max(1) as u128;
        self.config.base_time_ms + (n as u128 * 1000 / rate) as i64
    }

    /// Appends the next event as one JSON object (no newline) to `out`.
    pub fn next_json(&mut self, out: &mut Vec<u8>) -> EventMeta {
        let n = self.next;
        self.next += 1;
        let mut rng = SplitMix::new(self.config.seed, n);
        let ts = self.timestamp_of(n);
        let kind = EventKind::of(n);
        let key = match kind {
            EventKind::Person => self.person(n, ts, &mut rng, out),
            EventKind::Auction => self.auction(n, ts, &mut rng, out),
            EventKind::Bid => self.bid(n, ts, &mut rng, out),
        };
        EventMeta { kind, timestamp: ts, key }
    }

    fn person(&self, n: u64, ts: i64, rng: &mut SplitMix, out: &mut Vec<u8>) -> u64 {
        let id = last_base0_person_id(n) + FIRST_PERSON_ID;
        let start = out.len();
        out.extend_from_slice(b"{\"id\":");
        push_u64(out, id);
        out.extend_from_slice(b",\"name\":\"");
        out.extend_from_slice(FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize].as_bytes());
        out.push(b' ');
        out.extend_from_slice(LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize].as_bytes());
        out.extend_from_slice(b"\",\"email_address\":\"");
        rng.push_string(out, 7);
        out.push(b'@');
        rng.push_string(out, 5);
        out.extend_from_slice(b".com\",\"credit_card\":\"");
        for i in 0..4 {
            if i > 0 {
                out.push(b' ');
            }
            let d = rng.below(10_000);
            out.extend_from_slice(format!("{d:04}").as_bytes());
        }
        out.extend_from_slice(b"\",\"city\":\"");
        out.extend_from_slice(US_CITIES[rng.below(US_CITIES.len() as u64) as usize].as_bytes());
        out.extend_from_slice(b"\",\"state\":\"");
        out.extend_from_slice(US_STATES[rng.below(US_STATES.len() as u64) as usize].as_bytes());
        out.extend_from_slice(b"\",\"date_time\":");
        push_i64(out, ts);
        out.extend_from_slice(b",\"extra\":\"");
        let size = out.len() - start;
        rng.push_extra(out, size, self.config.avg_person_bytes);
        out.extend_from_slice(b"\"}");
        id
    }

    fn auction(&self, n: u64, ts: i64, rng: &mut SplitMix, out: &mut Vec<u8>) -> u64 {
        let c = &self.config;
        let id = last_base0_auction_id(n) + FIRST_AUCTION_ID;
        let seller = if rng.below(c.hot_seller_ratio.max(1)) > 0 {
            (last_base0_person_id(n) / HOT_BLOCK) * HOT_BLOCK
        } else {
            next_base0_person_id(n, rng)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
        let initial_bid = next_price(rng);
        let reserve = initial_bid + next_price(rng);
        // Auctions end within twice the event time it takes for the in-flight auctions to turn over.
        let events_for_auctions = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        let horizon = (self.timestamp_of(n + events_for_auctions) - ts).max(1) as u64;
        let expires = ts + 1 + rng.below(horizon * 2) as i64;
        let start = out.len();
        out.extend_from_slice(b"{\"id\":");
        push_u64(out, id);
        out.extend_from_slice(b",\"item_name\":\"");
        rng.push_string(out, 20);
        out.extend_from_slice(b"\",\"description\":\"");
        rng.push_string(out, 100);
        out.extend_from_slice(b"\",\"initial_bid\":");
        push_u64(out, initial_bid);
        out.extend_from_slice(b",\"reserve\":");
        push_u64(out, reserve);
        out.extend_from_slice(b",\"date_time\":");
        push_i64(out, ts);
        out.extend_from_slice(b",\"expires\":");
        push_i64(out, expires);
        out.extend_from_slice(b",\"seller\":");
        push_u64(out, seller);
        out.extend_from_slice(b",\"category\":");
        push_u64(out, category);
        out.extend_from_slice(b",\"extra\":\"");
        let size = out.len() - start;
        rng.push_extra(out, size, c.avg_auction_bytes);
        out.extend_from_slice(b"\"}");
        id
    }

    fn bid(&self, n: u64, ts: i64, rng: &mut SplitMix, out: &mut Vec<u8>) -> u64 {
        let c = &self.config;
        let auction = if rng.below(c.hot_auction_ratio.max(1)) > 0 {
            (last_base0_auction_id(n) / HOT_BLOCK) * HOT_BLOCK
        } else {
            next_base0_auction_id(n, rng)
        } + FIRST_AUCTION_ID;
        let bidder = if rng.below(c.hot_bidder_ratio.max(1)) > 0 {
            (last_base0_person_id(n) / HOT_BLOCK) * HOT_BLOCK + 1
        } else {
            next_base0_person_id(n, rng)
        } + FIRST_PERSON_ID;
        let price = next_price(rng);
        let start = out.len();
        out.extend_from_slice(b"{\"auction\":");
        push_u64(out, auction);
        out.extend_from_slice(b",\"bidder\":");
        push_u64(out, bidder);
        out.extend_from_slice(b",\"price\":");
        push_u64(out, price);
        out.extend_from_slice(b",\"channel\":\"");
        if rng.below(c.hot_channel_ratio.max(1)) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64);
            out.extend_from_slice(HOT_CHANNELS[i as usize].as_bytes());
            out.extend_from_slice(b"\",\"url\":\"");
            push_base_url(out, c.seed, i + CHANNELS);
        } else {
            let ch = rng.below(CHANNELS);
            out.extend_from_slice(b"channel-");
            push_u64(out, ch);
            out.extend_from_slice(b"\",\"url\":\"");
            push_base_url(out, c.seed, ch);
            out.extend_from_slice(b"&channel_id=");
            push_u64(out, (ch as u32).reverse_bits() as u64 & 0x7fff_ffff);
        }
        out.extend_from_slice(b"\",\"date_time\":");
        push_i64(out, ts);
        out.extend_from_slice(b",\"extra\":\"");
        let size = out.len() - start;
        rng.push_extra(out, size, c.avg_bid_bytes);
        out.extend_from_slice(b"\"}");
        auction
    }
}

/// Counts of what [`load_topics`] appended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts {
    /// Persons appended.
    pub persons: u64,
    /// Auctions appended.
    pub auctions: u64,
    /// Bids appended.
    pub bids: u64,
    /// Bytes of record values.
    pub bytes: u64,
}

impl LoadCounts {
    /// All events.
    pub fn total(&self) -> u64 {
        self.persons + self.auctions + self.bids
    }

    /// The count of one kind.
    pub fn of(&self, kind: EventKind) -> u64 {
        match kind {
            EventKind::Person => self.persons,
            EventKind::Auction => self.auctions,
            EventKind::Bid => self.bids,
        }
    }
}

/// Generates `events` events and appends them to the topics `person`, `auction` and `bid`
/// (created with `partitions` partitions when missing). `sink` sees every event with its JSON
/// (for exporting the same events to files); pass `|_, _| Ok(())` when not needed.
pub fn load_topics(
    log: &Arc<dyn TopicLog>,
    config: GeneratorConfig,
    events: u64,
    partitions: u32,
    mut sink: impl FnMut(&EventMeta, &[u8]) -> Result<()>,
) -> Result<LoadCounts> {
    let partitions = partitions.max(1);
    for kind in EventKind::ALL {
        if log.describe_topic(kind.topic()).is_err() {
            log.create_topic(kind.topic(), &TopicConfig::new(partitions))?;
        }
    }
    let parts: Vec<u32> =
        EventKind::ALL.iter().map(|k| log.describe_topic(k.topic()).map(|i| i.config.partitions)).collect::<Result<_, _>>()?;
    let mut gen = Generator::new(config);
    let mut counts = LoadCounts::default();
    const CHUNK: u64 = 20_000;
    // Per kind and partition: the encoded values, and (value end, timestamp, key) per record.
    type Encoded = (Vec<u8>, Vec<(usize, i64, [u8; 8])>);
    let mut bufs: Vec<Vec<Encoded>> =
        parts.iter().map(|&p| (0..p).map(|_| (Vec::new(), Vec::new())).collect()).collect();
    let mut json = Vec::with_capacity(1024);
    let mut done = 0;
    while done < events {
        let m = CHUNK.min(events - done);
        for _ in 0..m {
            json.clear();
            let meta = gen.next_json(&mut json);
            sink(&meta, &json)?;
            let key = meta.key.to_be_bytes();
            let k = meta.kind.index();
            let p = partition_for_key(&key, parts[k]) as usize;
            let (buf, recs) = &mut bufs[k][p];
            buf.extend_from_slice(&json);
            recs.push((buf.len(), meta.timestamp, key));
            match meta.kind {
                EventKind::Person => counts.persons += 1,
                EventKind::Auction => counts.auctions += 1,
                EventKind::Bid => counts.bids += 1,
            }
            counts.bytes += json.len() as u64;
        }
        for (k, kind) in EventKind::ALL.iter().enumerate() {
            for (p, (buf, recs)) in bufs[k].iter_mut().enumerate() {
                if recs.is_empty() {
                    continue;
                }
                let mut from = 0;
                let ins: Vec<RecordIn<'_>> = recs
                    .iter()
                    .map(|(end, ts, key)| {
                        let r = RecordIn { timestamp: *ts, key: Some(key), value: Some(&buf[from..*end]), headers: &[] };
                        from = *end;
                        r
                    })
                    .collect();
                log.append(kind.topic(), p as u32, &ins)?;
                drop(ins);
                buf.clear();
                recs.clear();
            }
        }
        done += m;
    }
    Ok(counts)
}

/// The 0-based id of the latest person at or before event `n`.
fn last_base0_person_id(n: u64) -> u64 {
    let epoch = n / TOTAL_PROPORTION;
    // Nexmark's formula, kept for other proportions: with one person per block it is always 0.
    #[allow(clippy::unnecessary_min_or_max)]
    let off = (n % TOTAL_PROPORTION).min(PERSON_PROPORTION - 1);
    epoch * PERSON_PROPORTION + off
}

/// The 0-based id of the latest auction at or before event `n`.
fn last_base0_auction_id(n: u64) -> u64 {
    let mut epoch = n / TOTAL_PROPORTION;
    let mut off = n % TOTAL_PROPORTION;
    if off < PERSON_PROPORTION {
        // Still the auctions of the previous block.
        if epoch == 0 {
            return 0;
        }
        epoch -= 1;
        off = AUCTION_PROPORTION - 1;
    } else if off >= PERSON_PROPORTION + AUCTION_PROPORTION {
        off = AUCTION_PROPORTION - 1;
    } else {
        off -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + off
}

/// A recent person (0-based), possibly one a little ahead of the latest.
fn next_base0_person_id(n: u64, rng: &mut SplitMix) -> u64 {
    let people = last_base0_person_id(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// A recent auction (0-based), possibly one a little ahead of the latest.
fn next_base0_auction_id(n: u64, rng: &mut SplitMix) -> u64 {
    let max = last_base0_auction_id(n);
    let min = max.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

/// A price in cents, log-uniform between 1.00 and 1,000,000.00.
fn next_price(rng: &mut SplitMix) -> u64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0).round() as u64
}

/// The URL of channel `ch`: fixed per (seed, channel).
fn push_base_url(out: &mut Vec<u8>, seed: u64, ch: u64) {
    let mut rng = SplitMix::new(seed ^ 0x5eed_u64, ch);
    out.extend_from_slice(b"https://www.nexmark.com/");
    for _ in 0..3 {
        rng.push_exact(out, 5, b'_');
        out.push(b'/');
    }
    out.extend_from_slice(b"item.htm?query=1");
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// SplitMix64: one small random stream per event; also the seeded generator of the tests of
/// this crate and of those above it (planner, repl).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// The generator for stream `n` of `seed`.
    pub fn new(seed: u64, n: u64) -> Self {
        let mut s = SplitMix(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n.wrapping_mul(0xd1b5_4a32_d192_ed03));
        s.next_u64();
        s
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Lowercase letters and spaces, 1 to `max` of them, not starting or ending with a space.
    fn push_string(&mut self, out: &mut Vec<u8>, max: u64) {
        let len = 1 + self.below(max);
        self.push_exact(out, len, b' ');
    }

    /// Exactly `len` characters: lowercase letters, about one in 13 being `space`.
    fn push_exact(&mut self, out: &mut Vec<u8>, len: u64, space: u8) {
        for i in 0..len {
            let r = self.below(27);
            let c = if r == 26 && i > 0 && i + 1 < len { space } else { b'a' + (r % 26) as u8 };
            out.push(c);
        }
    }

    /// Padding that brings an event of `size` bytes to about `avg` bytes on average (±20%).
    fn push_extra(&mut self, out: &mut Vec<u8>, size: usize, avg: usize) {
        if size >= avg {
            return;
        }
        let want = (avg - size) as u64;
        let delta = (want as f64 * 0.2).round() as u64;
        let len = want - delta + if delta > 0 { self.below(2 * delta) } else { 0 };
        self.push_exact(out, len, b' ');
    }
}
