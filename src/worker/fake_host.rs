//! A fake [`Host`] for the lifecycle tests: a clock and a shared-data store that several fakes (several
//! worker VMs of one Envoy) can share, with Envoy's compare-and-swap rules; callouts are recorded and
//! answered by the test; metrics are counted.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::worker::host::{Host, SharedDataError, SharedValue};

/// The process-wide parts: the clock and the shared data (value, compare-and-swap version per key).
#[derive(Default)]
pub struct FakeProcess {
    pub now_ms: Cell<u64>,
    shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl FakeProcess {
    pub fn new(now_ms: u64) -> Rc<FakeProcess> {
        let process = FakeProcess::default();
        process.now_ms.set(now_ms);
        Rc::new(process)
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap();
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// The value under `key`, as a string (empty when absent).
    pub fn shared_text(&self, key: &str) -> String {
        self.shared
            .borrow()
            .get(key)
            .map(|(value, _)| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default()
    }
}

/// One callout a worker made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub token: u32,
    pub cluster: String,
    pub path: String,
}

/// The response being delivered to `on_response`.
#[derive(Default)]
pub struct FakeResponse {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// One worker VM's view of the host.
pub struct FakeHost {
    pub process: Rc<FakeProcess>,
    next_token: Cell<u32>,
    pub callouts: RefCell<Vec<Callout>>,
    pub response: RefCell<FakeResponse>,
    pub counters: RefCell<HashMap<String, u64>>,
    pub gauges: RefCell<HashMap<String, u64>>,
}

impl FakeHost {
    pub fn new(process: &Rc<FakeProcess>) -> FakeHost {
        FakeHost {
            process: process.clone(),
            next_token: Cell::new(1),
            callouts: RefCell::new(Vec::new()),
            response: RefCell::new(FakeResponse::default()),
            counters: RefCell::new(HashMap::new()),
            gauges: RefCell::new(HashMap::new()),
        }
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.borrow().get(name).copied().unwrap_or(0)
    }

    /// Sets the response the next `on_response` reads.
    pub fn respond(&self, status: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut all = vec![(":status".to_string(), status.as_bytes().to_vec())];
        all.extend(
            headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec())),
        );
        *self.response.borrow_mut() = FakeResponse {
            headers: all,
            body: body.to_vec(),
        };
    }
}

impl Host for FakeHost {
    fn now_ms(&self) -> u64 {
        self.process.now_ms.get()
    }

    fn get_shared_data(&self, key: &str) -> Result<SharedValue, SharedDataError> {
        Ok(match self.process.shared.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        let mut shared = self.process.shared.borrow_mut();
        match shared.get_mut(key) {
            Some((_, current)) if cas.is_some_and(|cas| cas != *current) => {
                Err(SharedDataError::CasMismatch)
            }
            Some(entry) => {
                *entry = (value.to_vec(), entry.1 + 1);
                Ok(())
            }
            // Envoy does not enforce a compare-and-swap on a key that does not exist yet.
            None => {
                shared.insert(key.to_string(), (value.to_vec(), 1));
                Ok(())
            }
        }
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        _timeout: Duration,
    ) -> Result<u32, String> {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let path = headers
            .iter()
            .find(|(name, _)| *name == ":path")
            .map(|(_, value)| value.to_string())
            .unwrap_or_default();
        self.callouts.borrow_mut().push(Callout {
            token,
            cluster: cluster.to_string(),
            path,
        });
        Ok(token)
    }

    fn call_response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.response
            .borrow()
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }

    fn call_response_body(&self, max_size: usize) -> Option<Vec<u8>> {
        let body = &self.response.borrow().body;
        Some(body[..body.len().min(max_size)].to_vec())
    }

    fn count(&self, name: &str) {
        *self
            .counters
            .borrow_mut()
            .entry(name.to_string())
            .or_default() += 1;
    }

    fn gauge(&self, name: &str, value: u64) {
        self.gauges.borrow_mut().insert(name.to_string(), value);
    }
}
