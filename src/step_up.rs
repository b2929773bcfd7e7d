//! Step-up policies per tool (RFC 9470): what the token's claims must say before a tool runs; the decision is pure (claims and `now` in).
//!
//! A tool whose policy the token fails is answered with HTTP 401 and
//! `WWW-Authenticate: Bearer error="insufficient_user_authentication"`, with `acr_values` and
//! `max_age` when the policy sets them, so a client can go back to the issuer for a stronger or
//! fresher login. `tools/list` still lists the tool: the client needs to know it exists.

use serde_json::{Map, Value};

/// What a token must carry to call a tool. Every requirement must hold.
///
/// ```
/// use serde_json::json;
/// use vouch_mcp::StepUp;
///
/// let policy = StepUp::new()
///     .claim_equals("hardware_verified", true)
///     .claim_contains("amr", "hwk")
///     .acr_one_of(["urn:example:loa:high"])
///     .max_age(300);
/// let claims = json!({"hardware_verified": true, "amr": ["pwd", "hwk"],
///     "acr": "urn:example:loa:high", "auth_time": 1_000});
/// assert!(policy.evaluate(claims.as_object().unwrap(), 1_200).is_ok());
/// let denial = policy.evaluate(claims.as_object().unwrap(), 1_400).unwrap_err();
/// assert_eq!(denial.max_age(), Some(300));
/// assert_eq!(denial.acr_values(), Some("urn:example:loa:high"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepUp {
    equals: Vec<(String, Value)>,
    contains: Vec<(String, String)>,
    acr: Vec<String>,
    max_age: Option<u64>,
    description: Option<String>,
}

/// Why a token failed a [`StepUp`] policy, and what the challenge tells the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpDenial {
    description: String,
    acr_values: Option<String>,
    max_age: Option<u64>,
}

impl StepUpDenial {
    /// The `error_description` of the challenge.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The `acr_values` of the challenge: the accepted `acr` values, space-separated, in order
    /// of preference (only when the policy names some).
    pub fn acr_values(&self) -> Option<&str> {
        self.acr_values.as_deref()
    }

    /// The `max_age` of the challenge: seconds since the login (only when the policy sets it).
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }
}

/// RFC 6749 `error_description` and NQCHAR-based values: visible ASCII and space, no `"` or `\`.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

impl StepUp {
    /// A policy that asks for nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claim `name` must equal `value` exactly (JSON equality: `true` is not `"true"`).
    pub fn claim_equals(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.equals.push((name.into(), value.into()));
        self
    }

    /// The claim `name` must be an array holding the string `value` (e.g. `amr` holding `hwk`).
    pub fn claim_contains(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.contains.push((name.into(), value.into()));
        self
    }

    /// The `acr` claim must be one of `values` (listed in order of preference in the challenge).
    pub fn acr_one_of<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr.extend(values.into_iter().map(Into::into));
        self
    }

    /// The login (`auth_time`) must be at most `secs` seconds old.
    pub fn max_age(mut self, secs: u64) -> Self {
        self.max_age = Some(secs);
        self
    }

    /// The `error_description` sent on failure, instead of one naming the first unmet
    /// requirement. Visible ASCII without `"` or `\` (checked when the server is built).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Why the policy cannot be sent in a challenge, if it cannot.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self
            .acr
            .iter()
            .any(|a| a.is_empty() || a.contains(' ') || !plain(a))
        {
            return Err("an acr value must be non-empty visible ASCII without space, \" or \\");
        }
        if self.description.as_deref().is_some_and(|d| !plain(d)) {
            return Err("the step-up description must be visible ASCII without \" or \\");
        }
        Ok(())
    }

    /// Judges `claims` at `now` (Unix seconds): `Ok` when every requirement holds.
    pub fn evaluate(&self, claims: &Map<String, Value>, now: u64) -> Result<(), StepUpDenial> {
        let failed = self.first_failure(claims, now);
        match failed {
            None => Ok(()),
            Some(why) => Err(StepUpDenial {
                description: self.description.clone().unwrap_or(why),
                acr_values: (!self.acr.is_empty()).then(|| self.acr.join(" ")),
                max_age: self.max_age,
            }),
        }
    }

    fn first_failure(&self, claims: &Map<String, Value>, now: u64) -> Option<String> {
        let named = |name: &str, what: &str| {
            if plain(name) {
                format!("the {name} claim {what}")
            } else {
                format!("a claim {what}")
            }
        };
        for (name, want) in &self.equals {
            if claims.get(name) != Some(want) {
                return Some(named(name, "does not have the value this tool requires"));
            }
        }
        for (name, want) in &self.contains {
            let held = claims
                .get(name)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want)));
            if !held {
                return Some(named(name, "lacks a value this tool requires"));
            }
        }
        if !self.acr.is_empty() {
            let acr = claims.get("acr").and_then(Value::as_str);
            if !acr.is_some_and(|a| self.acr.iter().any(|w| w == a)) {
                return Some("a different authentication level is required".into());
            }
        }
        if let Some(max) = self.max_age {
            let fresh = claims
                .get("auth_time")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite() && *t >= 0.0)
                .is_some_and(|t| (now as f64) - t <= max as f64);
            if !fresh {
                return Some("more recent authentication is required".into());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_is_json_equality() {
        let p = StepUp::new().claim_equals("hardware_verified", true);
        assert!(p
            .evaluate(&claims(json!({"hardware_verified": true})), 0)
            .is_ok());
        for v in [json!("true"), json!(1), json!(null)] {
            let d = p
                .evaluate(&claims(json!({"hardware_verified": v})), 0)
                .unwrap_err();
            assert_eq!(
                d.description(),
                "the hardware_verified claim does not have the value this tool requires"
            );
            assert_eq!((d.acr_values(), d.max_age()), (None, None));
        }
        assert!(p.evaluate(&Map::new(), 0).is_err());
    }

    #[test]
    fn membership_needs_an_array_holding_the_value() {
        let p = StepUp::new().claim_contains("amr", "hwk");
        assert!(p
            .evaluate(&claims(json!({"amr": ["pwd", "hwk"]})), 0)
            .is_ok());
        assert!(p.evaluate(&claims(json!({"amr": ["pwd"]})), 0).is_err());
        assert!(p.evaluate(&claims(json!({"amr": "hwk"})), 0).is_err());
    }

    #[test]
    fn acr_and_max_age_are_named_in_the_denial() {
        let p = StepUp::new().acr_one_of(["gold", "silver"]).max_age(60);
        let ok = claims(json!({"acr": "silver", "auth_time": 1000}));
        assert!(p.evaluate(&ok, 1060).is_ok());
        let stale = p.evaluate(&ok, 1061).unwrap_err();
        assert_eq!(
            stale.description(),
            "more recent authentication is required"
        );
        assert_eq!(
            (stale.acr_values(), stale.max_age()),
            (Some("gold silver"), Some(60))
        );
        let weak = p
            .evaluate(&claims(json!({"acr": "bronze", "auth_time": 1000})), 1000)
            .unwrap_err();
        assert_eq!(
            weak.description(),
            "a different authentication level is required"
        );
        assert!(
            p.evaluate(&claims(json!({"acr": "gold"})), 1000).is_err(),
            "no auth_time"
        );
        assert!(p
            .evaluate(&claims(json!({"acr": "gold", "auth_time": "1000"})), 1000)
            .is_err());
    }

    #[test]
    fn a_custom_description_replaces_the_generated_one_and_is_checked() {
        let p = StepUp::new()
            .claim_equals("x", 1)
            .description("use your security key");
        assert_eq!(
            p.evaluate(&Map::new(), 0).unwrap_err().description(),
            "use your security key"
        );
        assert!(p.check().is_ok());
        assert!(StepUp::new().description("say \"hi\"").check().is_err());
        assert!(StepUp::new().acr_one_of(["a b"]).check().is_err());
        assert!(StepUp::new().acr_one_of([""]).check().is_err());
    }
}
