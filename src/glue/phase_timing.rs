//! Where the header callback's time goes, step by step, for performance work: the module reads the host
//! clock between steps and logs the average per step every 20,000 requests. Only in a module
//! built with the `phase-timing` feature (`PHASES=1 bench/run.sh` builds one); without it every call
//! here is empty, and shipped modules are built without it.
//!
//! Each clock read is a host call (about 0.2 µs in Envoy), so a step's figure includes one; the
//! `clock` step is a read right after another and measures exactly that.

/// A point of the header callback, in order; the time a step took is charged to the point it ends at.
#[derive(Clone, Copy)]
pub enum Step {
    /// The callback's start (charged nothing).
    Entered = 0,
    /// A second clock read: the cost of one.
    Clock,
    /// The host's header map read.
    HeadersRead,
    /// The header map parsed and the clock read.
    HeadersParsed,
    /// The first look ([`crate::request::authenticator::start_on_connection`]): rule, tokens, cache,
    /// claim checks; a cached request is decided here.
    FirstLook,
    /// A request that needed keys judged with them: signatures, cache inserts, the verdict.
    Judged,
    /// The verdict applied (header writes, local reply).
    Applied,
}

#[cfg(feature = "phase-timing")]
mod enabled {
    use std::cell::RefCell;

    use super::Step;

    /// Steps in [`Step`] (the last is `Applied`).
    const STEPS: usize = Step::Applied as usize + 1;
    /// Requests between two log lines.
    const REPORT_EVERY: u64 = 20_000;

    struct Totals {
        nanos: [u64; STEPS],
        counts: [u64; STEPS],
        last: u64,
        requests: u64,
    }

    thread_local! {
        static TOTALS: RefCell<Totals> = const {
            RefCell::new(Totals { nanos: [0; STEPS], counts: [0; STEPS], last: 0, requests: 0 })
        };
    }

    pub fn mark(step: Step) {
        let now = crate::glue::abi::clock_nanos();
        TOTALS.with(|totals| {
            let Ok(mut guard) = totals.try_borrow_mut() else {
                return;
            };
            let totals = &mut *guard;
            let index = step as usize;
            if !matches!(step, Step::Entered) {
                let spent = now.saturating_sub(totals.last);
                if let (Some(nanos), Some(count)) =
                    (totals.nanos.get_mut(index), totals.counts.get_mut(index))
                {
                    *nanos = nanos.saturating_add(spent);
                    *count += 1;
                }
            }
            totals.last = now;
            if matches!(step, Step::Applied) {
                totals.requests += 1;
                if totals.requests % REPORT_EVERY == 0 {
                    let average = |i: usize| {
                        let count = totals.counts.get(i).copied().unwrap_or(0).max(1);
                        totals.nanos.get(i).copied().unwrap_or(0) / count
                    };
                    log::warn!(
                        "jwt-authn-wasm phase timing, ns per request over {} requests: clock {} headers_read {} headers_parsed {} first_look {} judged {} (in {} requests) applied {}",
                        totals.requests,
                        average(Step::Clock as usize),
                        average(Step::HeadersRead as usize),
                        average(Step::HeadersParsed as usize),
                        average(Step::FirstLook as usize),
                        average(Step::Judged as usize),
                        totals.counts.get(Step::Judged as usize).copied().unwrap_or(0),
                        average(Step::Applied as usize),
                    );
                }
            }
        });
    }
}

#[cfg(feature = "phase-timing")]
pub use enabled::mark;

/// Without the feature: nothing.
#[cfg(not(feature = "phase-timing"))]
#[inline(always)]
pub fn mark(_step: Step) {}
