//! The guide's two tools, `whoami` and `sensitive-action`, reading this request's verified claims.

use serde::Serialize;
use serde_json::{Map, Value};
use vouch_mcp::{
    CallToolResult, RequestContext, Schema, StepUp, Tool, ToolAnnotations, ToolResult,
};

/// Only a JSON `true` counts: the guide's Python truthiness would also accept `"yes"` or `1`.
fn hardware_verified(claims: &Map<String, Value>) -> bool {
    claims.get("hardware_verified") == Some(&Value::Bool(true))
}

fn string_claim<'c>(claims: &'c Map<String, Value>, name: &str) -> &'c str {
    claims
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("unknown")
}

/// `whoami`: email, sub and hardware_verified of the caller, as structured output plus pretty JSON text.
pub(crate) fn whoami() -> Tool {
    Tool::new(
        "whoami",
        "Returns the authenticated user info from the Vouch OIDC token.",
        |ctx: RequestContext| async move { whoami_result(ctx.claims()) },
    )
    .title("Who am I")
    .output(
        Schema::object()
            .required("email", Schema::string())
            .required("sub", Schema::string())
            .required("hardware_verified", Schema::boolean()),
    )
    .annotations(ToolAnnotations {
        read_only: Some(true),
        destructive: Some(false),
        idempotent: Some(true),
        open_world: Some(false),
    })
}

/// Field order is the guide's; derive keeps it where a JSON map would sort the keys.
#[derive(Serialize)]
struct WhoAmI<'c> {
    email: &'c str,
    sub: &'c str,
    hardware_verified: bool,
}

#[derive(Serialize)]
struct HardwareKeyRequired {
    error: &'static str,
    message: &'static str,
}

#[derive(Serialize)]
struct Success<'a> {
    status: &'static str,
    hardware_aaguid: &'a Value,
}

fn whoami_result(claims: &Map<String, Value>) -> ToolResult {
    let who = WhoAmI {
        email: string_claim(claims, "email"),
        sub: string_claim(claims, "sub"),
        hardware_verified: hardware_verified(claims),
    };
    let mut structured = Map::new();
    structured.insert("email".into(), Value::from(who.email));
    structured.insert("sub".into(), Value::from(who.sub));
    structured.insert(
        "hardware_verified".into(),
        Value::Bool(who.hardware_verified),
    );
    let mut result = CallToolResult::text(pretty(&who));
    result.structured_content = Some(Value::Object(structured));
    Ok(result)
}

/// `sensitive-action`: succeeds only when this request's token says `hardware_verified: true`.
pub(crate) fn sensitive_action() -> Tool {
    Tool::new(
        "sensitive-action",
        "Requires hardware key verification.",
        |ctx: RequestContext| async move { sensitive_action_result(ctx.claims()) },
    )
    .title("Sensitive action")
    .annotations(ToolAnnotations {
        read_only: Some(false),
        destructive: Some(false),
        idempotent: Some(true),
        open_world: Some(false),
    })
}

/// `sensitive-action` for clients that can step up: a token without `hardware_verified: true`
/// gets HTTP 401 `insufficient_user_authentication` (RFC 9470) instead of the guide's
/// `isError` result (`VOUCH_STEP_UP=challenge`).
#[allow(dead_code)] // not every crate that includes this file uses it
pub(crate) fn sensitive_action_challenge() -> Tool {
    sensitive_action().step_up(
        StepUp::new()
            .claim_equals("hardware_verified", true)
            .description(
                "This action requires hardware_verified=true (log in with a hardware key)",
            ),
    )
}

fn sensitive_action_result(claims: &Map<String, Value>) -> ToolResult {
    if !hardware_verified(claims) {
        let body = HardwareKeyRequired {
            error: "hardware_key_required",
            message: "This action requires hardware_verified=true.",
        };
        return Ok(CallToolResult::text(pretty(&body)).into_error());
    }
    let body = Success {
        status: "success",
        hardware_aaguid: claims.get("hardware_aaguid").unwrap_or(&Value::Null),
    };
    Ok(CallToolResult::text(pretty(&body)))
}

fn pretty(v: &impl Serialize) -> String {
    let mut out = Vec::with_capacity(128);
    serde_json::to_writer_pretty(&mut out, v).expect("plain data serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn whoami_defaults_follow_the_guide() {
        let r = whoami_result(&claims(json!({}))).unwrap();
        assert_eq!(
            r.structured_content.unwrap(),
            json!({"email":"unknown","sub":"unknown","hardware_verified":false})
        );
    }

    #[test]
    fn only_boolean_true_is_hardware_verified() {
        for v in [json!("true"), json!(1), json!(null)] {
            let r = sensitive_action_result(&claims(json!({"hardware_verified": v}))).unwrap();
            assert!(r.is_error);
        }
        let r = sensitive_action_result(&claims(
            json!({"hardware_verified": true, "hardware_aaguid": "x"}),
        ))
        .unwrap();
        assert!(!r.is_error);
        assert_eq!(
            r.content[0]["text"],
            "{\n  \"status\": \"success\",\n  \"hardware_aaguid\": \"x\"\n}"
        );
    }
}
