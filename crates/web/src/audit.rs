//! The dashboard's record of who did what: logins (role, address), shells
//! (task, start, end, exit code) and actions (who, what, the plan, the
//! result), one JSON object per line, appended to `--audit FILE` or
//! written to standard error.
//!
//! Every line has `time` (RFC 3339, UTC) and `event`; what else depends on
//! the event. Nothing that would let a reader of the record in is written:
//! a session is named by its public id, never its secret, and a token or
//! login code never appears.

use std::net::SocketAddr;

use serde_json::{Map, Value};

use crate::auth::Who;
use crate::LogSink;

/// Where the record goes.
#[derive(Clone)]
pub struct Audit {
    sink: LogSink,
}

impl Audit {
    pub fn new(sink: LogSink) -> Audit {
        Audit { sink }
    }

    /// Appends one line: `{"time":…, "event": event, …fields}`.
    pub fn record(&self, event: &str, fields: Value) {
        let mut line = Map::new();
        line.insert("time".into(), Value::String(crate::now()));
        line.insert("event".into(), Value::String(event.to_string()));
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        (self.sink)(&Value::Object(line).to_string());
    }
}

/// How a record names who did something: role, session (or the bearer
/// token), address.
pub fn who(who: &Who, address: Option<SocketAddr>) -> Value {
    serde_json::json!({
        "role": who.role().as_str(),
        "session": who.name(),
        "address": address.map(|a| a.ip().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_record_is_one_json_line_with_time_and_event() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        let audit = Audit::new(Arc::new(move |line: &str| {
            kept.lock().map(|mut l| l.push(line.to_string())).ok();
        }));
        audit.record(
            "login",
            serde_json::json!({"role": "viewer", "address": "10.0.0.1"}),
        );
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let v: Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(v["event"], "login");
        assert_eq!(v["role"], "viewer");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
