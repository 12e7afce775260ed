//! Requests and keys: whether a request whose signatures need keys is judged now or waits (for the
//! first keys, or for a refetch an unknown kid asks for), and which waiting requests are resumed or
//! refused when keys arrive or time runs out. Over the [`Host`] seam; the glue only pauses, resumes and
//! answers streams.

use crate::config::{FilterConfig, ProviderId, RemoteJwks};
use crate::jwks::{backing_off, kid_refetch_allowed, millis, SharedKeys};
use crate::metrics;
use crate::request::authenticator::{PendingAuth, Verdict};
use crate::worker::host::Host;
use crate::worker::records;
use crate::worker::state::{remote_of, Released, WaitReason, WaitingRequest, WorkerState};

/// How much longer than the fetch timeout a request waits for a refetch (the fetch starts on the
/// fetching worker's next tick).
pub const REFETCH_WAIT_SLACK_MS: u64 = 1000;

/// A decision for a paused request: the stream `context_id` gets `verdict`.
#[derive(Debug)]
pub struct Resolution {
    pub context_id: u32,
    pub released: Released,
    pub verdict: Verdict,
}

/// A request to queue: which provider's keys it waits for, why, and for how long.
struct Wait {
    provider: ProviderId,
    reason: WaitReason,
    min_version: u64,
    wait_ms: u64,
}

/// Judges `pending` now if the keys it needs are at hand (`Some`), or queues it in `worker` to wait for
/// them (`None`: the glue pauses the stream `context_id`).
pub fn judge_or_wait(
    host: &dyn Host,
    worker: &mut WorkerState,
    pending: PendingAuth,
    context_id: u32,
    released: &Released,
    now: u64,
) -> Option<Verdict> {
    let config = worker.config.clone();
    let needed = pending.providers_needing_keys();
    // This worker's copy may lag the shared one by up to a tick: look again before waiting for
    // keys or asking for a refetch another worker may already have done.
    for &provider in &needed {
        let current = worker
            .keys_of(provider, now)
            .is_some_and(|(_, jwks)| !pending.has_unknown_kid(provider, &jwks));
        if !current {
            worker.sync_from_shared(host, provider);
        }
    }
    let Some(wait) = first_wait(host, worker, &config, &pending, &needed, now) else {
        let keys = worker.keys_snapshot(now);
        return Some(pending.finish(
            &config,
            &|p| keys.get(p).cloned().flatten(),
            &mut worker.token_caches,
        ));
    };
    worker.waiting.push(WaitingRequest {
        context_id,
        released: released.clone(),
        pending,
        provider: wait.provider,
        started_at_ms: now,
        deadline_ms: now.saturating_add(wait.wait_ms),
        min_version: wait.min_version,
        reason: wait.reason,
    });
    None
}

/// The first provider whose keys are worth waiting for: none yet (the first fetch is under way, or they
/// went too stale), or an unknown kid whose refetch is asked for.
fn first_wait(
    host: &dyn Host,
    worker: &WorkerState,
    config: &FilterConfig,
    pending: &PendingAuth,
    needed: &[ProviderId],
    now: u64,
) -> Option<Wait> {
    for &provider in needed {
        let Some(remote) = remote_of(config, provider) else {
            continue;
        };
        match worker.keys_of(provider, now) {
            Some((version, jwks))
                if remote.policy.refetch_on_unknown_kid
                    && pending.has_unknown_kid(provider, &jwks)
                    && ask_for_kid_refetch(host, config, provider, remote, now) =>
            {
                return Some(Wait {
                    provider,
                    reason: WaitReason::UnknownKid,
                    min_version: version.saturating_add(1),
                    wait_ms: millis(remote.timeout).saturating_add(REFETCH_WAIT_SLACK_MS),
                });
            }
            Some(_) => {}
            // Wait, bounded by the fetch timeout, rather than refuse: [`settle_waiting`] resumes or
            // refuses this request.
            None => {
                return Some(Wait {
                    provider,
                    reason: WaitReason::FirstKeys,
                    min_version: 1,
                    wait_ms: millis(remote.timeout),
                })
            }
        }
    }
    None
}

/// Asks for a refetch of `remote` because a token named an unknown kid (counted when this call asks).
/// Returns whether the request should wait for one: a refetch already asked for since the last fetch,
/// or this one, if the rate limit allows it and the JWKS is not in a failure back-off.
fn ask_for_kid_refetch(
    host: &dyn Host,
    config: &FilterConfig,
    provider: ProviderId,
    remote: &RemoteJwks,
    now: u64,
) -> bool {
    let keys = SharedKeys::for_uri(&remote.uri);
    let Ok((current, cas)) = host.get_shared_data(&keys.kid_refetch) else {
        return false;
    };
    let last_requested = current.and_then(|b| records::decode_number(&b));
    let last_fetch = records::meta(host, &keys).map_or(0, |m| m.fetched_at_ms);
    let failure = records::failure(host, &keys);
    if backing_off(failure.as_ref(), last_fetch, now) {
        return false;
    }
    let wait_limit = millis(remote.timeout).saturating_add(REFETCH_WAIT_SLACK_MS);
    if last_requested.is_some_and(|at| at > last_fetch && now < at.saturating_add(wait_limit)) {
        return true;
    }
    if !kid_refetch_allowed(
        last_requested,
        now,
        remote.policy.unknown_kid_refetch_interval,
    ) {
        return false;
    }
    let asked = host.set_shared_data(&keys.kid_refetch, now.to_string().as_bytes(), cas);
    if asked.is_ok() {
        let name = config
            .providers
            .get(provider)
            .map_or("", |p| p.name.as_str());
        host.count(&metrics::jwks_unknown_kid_refetch(
            &config.metric_prefix,
            name,
        ));
    }
    // A compare-and-swap mismatch means another worker asked at the same moment: wait for that one.
    true
}

/// Resumes requests whose keys are here, and settles those whose wait is over, in the order they
/// arrived. Requests still waiting stay queued.
pub fn settle_waiting(host: &dyn Host, worker: &mut WorkerState, now: u64) -> Vec<Resolution> {
    if worker.waiting.is_empty() {
        return Vec::new();
    }
    let mut providers: Vec<ProviderId> = worker.waiting.iter().map(|w| w.provider).collect();
    providers.sort_unstable();
    providers.dedup();
    for provider in providers {
        worker.sync_from_shared(host, provider);
    }
    let config = worker.config.clone();
    let mut resolutions = Vec::new();
    let mut still_waiting = Vec::new();
    for mut waiting in std::mem::take(&mut worker.waiting) {
        let arrived = worker
            .keys_of(waiting.provider, now)
            .is_some_and(|(version, _)| version >= waiting.min_version);
        let failed_since_arrival = remote_of(&config, waiting.provider).is_none_or(|remote| {
            records::failure(host, &SharedKeys::for_uri(&remote.uri))
                .is_some_and(|f| f.failed_at_ms >= waiting.started_at_ms)
        });
        let out_of_time = failed_since_arrival || now >= waiting.deadline_ms;
        if !arrived && !out_of_time {
            still_waiting.push(waiting);
            continue;
        }
        if arrived && !out_of_time {
            // Another provider of the same request may still have no keys: wait for it next.
            let missing = waiting
                .pending
                .providers_needing_keys()
                .into_iter()
                .find(|&p| remote_of(&config, p).is_some() && worker.keys_of(p, now).is_none());
            if let Some(provider) = missing {
                waiting.provider = provider;
                waiting.min_version = 1;
                waiting.reason = WaitReason::FirstKeys;
                still_waiting.push(waiting);
                continue;
            }
        }
        // Judge with the keys at hand: a provider without keys fails its tokens with "Jwks remote
        // fetch is failed"; an unknown kid whose refetch brought nothing fails as no key fits.
        let keys = worker.keys_snapshot(now);
        let verdict = waiting.pending.finish(
            &config,
            &|p| keys.get(p).cloned().flatten(),
            &mut worker.token_caches,
        );
        let verdict = crate::worker::dpop::check_proofs(host, &config, verdict, now);
        resolutions.push(Resolution {
            context_id: waiting.context_id,
            released: waiting.released,
            verdict,
        });
    }
    worker.waiting.extend(still_waiting);
    resolutions
}
