//! Hit rates of the verified-token cache under Zipf-distributed traffic, per worker against one cache
//! shared by the whole process: the question a process-wide cache in shared data has to answer before it
//! pays for its host calls. `cache_model USERS ZIPF CAPACITY WORKERS REQUESTS` prints one line per
//! layout: `layout hit_rate`. The policy is the filter's (src/request/token_cache.rs): the oldest entry
//! goes first unless a hit marked it since it was last considered (a second chance, CLOCK); with
//! `second_chance` off, plain insertion order (the policy before). Tokens do not expire within the run. Requests go to a
//! worker at random, as Envoy spreads connections and each connection draws its users at random
//! (bench/realistic.sh).

// Measurement code may unwrap, panic and index (a failed step stops with its message): the restriction lints
// Cargo.toml denies are for the filter.
#![allow(clippy::restriction)]

use std::collections::{HashMap, VecDeque};

struct Fifo {
    capacity: usize,
    second_chance: bool,
    /// Cached users, with whether a hit marked them since they were last considered for eviction.
    present: HashMap<u32, bool>,
    order: VecDeque<u32>,
}

impl Fifo {
    fn new(capacity: usize, second_chance: bool) -> Fifo {
        Fifo {
            capacity,
            second_chance,
            present: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `user` was cached; a miss verifies and inserts it.
    fn lookup(&mut self, user: u32) -> bool {
        if let Some(marked) = self.present.get_mut(&user) {
            *marked = true;
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        while self.present.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            match self.present.get_mut(&oldest) {
                Some(marked) if self.second_chance && *marked => {
                    *marked = false;
                    self.order.push_back(oldest);
                }
                _ => {
                    self.present.remove(&oldest);
                }
            }
        }
        self.present.insert(user, false);
        self.order.push_back(user);
        false
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, users, zipf, capacity, workers, requests] = args.as_slice() else {
        eprintln!("usage: cache_model USERS ZIPF CAPACITY WORKERS REQUESTS");
        std::process::exit(2);
    };
    let users: usize = users.parse().expect("users");
    let s: f64 = zipf.parse().expect("zipf exponent");
    let capacity: usize = capacity.parse().expect("capacity");
    let workers: usize = workers.parse().expect("workers");
    let requests: usize = requests.parse().expect("requests");
    let mut cdf: Vec<f64> = (1..=users).map(|r| (r as f64).powf(-s)).collect();
    let mut total = 0.0;
    for w in cdf.iter_mut() {
        total += *w;
        *w = total;
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut per_worker: Vec<Fifo> = (0..workers).map(|_| Fifo::new(capacity, true)).collect();
    let mut per_worker_fifo: Vec<Fifo> = (0..workers).map(|_| Fifo::new(capacity, false)).collect();
    let mut shared_same = Fifo::new(capacity, true);
    let mut shared_sum = Fifo::new(capacity * workers, true);
    let (mut hits_worker, mut hits_same, mut hits_sum, mut hits_either) = (0usize, 0, 0, 0);
    let mut hits_fifo = 0usize;
    // Warm-up: the first pass fills the caches; only the second is counted.
    for pass in 0..2 {
        for _ in 0..requests {
            let draw = uniform() * total;
            let user = cdf.partition_point(|&c| c < draw).min(users - 1) as u32;
            let worker = ((uniform() * workers as f64) as usize).min(workers - 1);
            let local = per_worker[worker].lookup(user);
            let fifo = per_worker_fifo[worker].lookup(user);
            let same = shared_same.lookup(user);
            let sum = shared_sum.lookup(user);
            if pass == 1 {
                hits_worker += usize::from(local);
                hits_fifo += usize::from(fifo);
                hits_same += usize::from(same);
                hits_sum += usize::from(sum);
                // A process-wide cache consulted on a local miss, the local caches kept: found if any
                // worker's cache has the token (which a shared copy of every worker's entries would hold).
                let elsewhere = local
                    || per_worker
                        .iter()
                        .enumerate()
                        .any(|(w, c)| w != worker && c.present.contains_key(&user));
                hits_either += usize::from(elsewhere);
            }
        }
    }
    let rate = |hits: usize| hits as f64 / requests as f64;
    println!(
        "per_worker_{capacity}_insertion_order {:.3}",
        rate(hits_fifo)
    );
    println!("per_worker_{capacity} {:.3}", rate(hits_worker));
    println!(
        "per_worker_{capacity}_then_any_worker {:.3}",
        rate(hits_either)
    );
    println!("process_wide_{capacity} {:.3}", rate(hits_same));
    println!("process_wide_{} {:.3}", capacity * workers, rate(hits_sum));
}
