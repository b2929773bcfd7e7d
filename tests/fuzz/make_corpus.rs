//! Writes the seed corpora (`corpus/<target>/seed-*`): protocol-fixtures bodies and requests, genuine dev-key tokens and JWKS, and the RFC 7515 / Wycheproof vectors.
//!
//! Run by hand (not by cargo-fuzz), from the repository root:
//! `cargo run --manifest-path tests/fuzz/Cargo.toml --features seeds --bin make-corpus -- [VECTORS_DIR]`
//! (VECTORS_DIR defaults to ../shared/vectors; missing vectors are skipped). The committed
//! corpora are these seeds merged with what the long runs found, minimized.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vouch_mcp::fuzz::{self, ISSUER, KID, NOW, RESOURCE};

struct Out {
    dir: PathBuf,
    n: usize,
}

impl Out {
    fn new(target: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        fs::create_dir_all(&dir).expect("corpus dir");
        Self { dir, n: 0 }
    }
    fn put(&mut self, bytes: impl AsRef<[u8]>) {
        self.n += 1;
        fs::write(self.dir.join(format!("seed-{:03}", self.n)), bytes).expect("write seed");
    }
    fn with_sel(&mut self, sel: u8, rest: impl AsRef<[u8]>) {
        let mut v = vec![sel];
        v.extend_from_slice(rest.as_ref());
        self.put(v);
    }
}

fn fixtures() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol-fixtures");
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("protocol-fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| serde_json::from_slice(&fs::read(p).ok()?).ok())
        .collect()
}

/// A fixture request's headers and body, placeholders turned into the fuzz harness's marks.
fn request_parts(req: &Value) -> (Vec<(String, String)>, Vec<u8>) {
    let subst = |s: &str| {
        s.replace("{{token}}", "$TOKEN")
            .replace("{{token:hw}}", "$TOKEN")
            .replace("{{session}}", "$SESSION")
            .replace("{{host}}", "localhost:3000")
            .replace("{{resource}}", RESOURCE)
            .replace("{{token:expired}}", "eyJhbGciOiJFUzI1NiJ9.e30.AA")
    };
    let mut headers = Vec::new();
    if let Some(h) = req["headers"].as_object() {
        for (k, v) in h {
            let values: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            for v in values {
                if let Some(v) = v.as_str() {
                    headers.push((k.clone(), subst(v)));
                }
            }
        }
    }
    let body = match &req["body"] {
        Value::Null => Vec::new(),
        Value::String(s) => subst(s).into_bytes(),
        v => subst(&v.to_string()).into_bytes(),
    };
    (headers, body)
}

fn main() {
    let vectors = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"));
    let fixtures = fixtures();

    // (a) JWT: genuine, expired, wrong-audience tokens; claim sets to sign; published vectors.
    let mut o = Out::new("jwt");
    let good = fuzz::genuine_token("alice");
    for sel in [0u8, 2, 4, 8] {
        o.with_sel(sel, &good);
    }
    let header = json!({"alg":"ES256","typ":"at+jwt","kid":KID}).to_string();
    let claims = [
        json!({"iss":ISSUER,"aud":RESOURCE,"sub":"a","exp":NOW+60,"iat":NOW,"nbf":NOW,"scope":"a b","scp":["c"]}),
        json!({"iss":ISSUER,"aud":[RESOURCE,"other"],"exp":NOW - 61}),
        json!({"iss":ISSUER,"aud":"other","exp":1e300,"sub":7}),
        json!({"iss":"x","exp":"soon"}),
    ];
    for c in &claims {
        let mut rest = header.clone().into_bytes();
        rest.push(0xff);
        rest.extend_from_slice(c.to_string().as_bytes());
        o.with_sel(1, &rest);
        let mut mutated = vec![0x80, 0x01];
        mutated.extend_from_slice(&rest);
        o.with_sel(0x11, mutated);
    }
    o.with_sel(
        1,
        b"{\"alg\":\"ES256\",\"alg\":\"none\"}\xff{\"iss\":\"a\",\"iss\":\"b\"}",
    );
    o.with_sel(
        1,
        b"{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"cty\":\"JWT\"}\xff{}",
    );
    if let Ok(a3) = fs::read(vectors.join("rfc7515-a3.json")) {
        let a3: Value = serde_json::from_slice(&a3).expect("rfc7515-a3.json");
        if let Some(jws) = a3["jws_compact"].as_str().or(a3["jws"].as_str()) {
            o.with_sel(0, jws);
        }
    }
    let mut wp_jwks = Vec::new();
    if let Ok(w) = fs::read(vectors.join("wycheproof/json_web_signature_test.json")) {
        let w: Value = serde_json::from_slice(&w).expect("wycheproof jws");
        for g in w["testGroups"].as_array().into_iter().flatten() {
            let key = g
                .get("public")
                .or(g.get("private"))
                .cloned()
                .unwrap_or(Value::Null);
            if key["kty"] != "EC" {
                continue;
            }
            wp_jwks.push(key);
            for t in g["tests"].as_array().into_iter().flatten().take(6) {
                if let Some(jws) = t["jws"].as_str() {
                    o.with_sel(0, jws);
                }
            }
        }
    }
    println!("jwt: {}", o.n);

    // (b) JWKS.
    let mut o = Out::new("jwks");
    o.put(fuzz::jwks_document());
    o.put(fuzz::single_key_jwks());
    o.put(br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA","d":"AA","key_ops":["sign"]},{"kty":"RSA"},7,{"kty":"EC","crv":"P-384"}]}"#);
    if let Ok(a3) = fs::read(vectors.join("rfc7515-a3.json")) {
        let a3: Value = serde_json::from_slice(&a3).expect("rfc7515-a3.json");
        o.put(json!({ "keys": [a3["jwk"]] }).to_string());
    }
    for k in &wp_jwks {
        o.put(json!({ "keys": [k] }).to_string());
    }
    if let Ok(w) = fs::read(vectors.join("wycheproof/json_web_key_test.json")) {
        let w: Value = serde_json::from_slice(&w).expect("wycheproof jwk");
        for g in w["testGroups"].as_array().into_iter().flatten() {
            if let Some(k) = g.get("public").or(g.get("private")) {
                if k["kty"] == "EC" {
                    o.put(json!({ "keys": [k] }).to_string());
                }
            }
        }
    }
    // RSA (RS256, PS256) and OKP Ed25519 keys, each alone and all in one set.
    let mut other_types = Vec::new();
    for (file, member) in [
        ("wycheproof/rsa_signature_2048_sha256_test.json", "keyJwk"),
        ("wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json", "keyJwk"),
        ("wycheproof/ed25519_test.json", "publicKeyJwk"),
    ] {
        if let Ok(w) = fs::read(vectors.join(file)) {
            let w: Value = serde_json::from_slice(&w).expect(file);
            for g in w["testGroups"].as_array().into_iter().flatten().take(3) {
                if let Some(k) = g.get(member) {
                    o.put(json!({ "keys": [k] }).to_string());
                    other_types.push(k.clone());
                }
            }
        }
    }
    if !other_types.is_empty() {
        o.put(json!({ "keys": other_types }).to_string());
    }
    println!("jwks: {}", o.n);

    // (c) core: every fixture POST body with its MCP headers; (h) http: every fixture request.
    let mut core = Out::new("core");
    let mut http = Out::new("http");
    let mut noauth = Out::new("http_noauth");
    let mut hdrs = Out::new("headers");
    for f in &fixtures {
        let req = &f["request"];
        let (headers, body) = request_parts(req);
        let method = req["method"].as_str().unwrap_or("POST");
        let path = req["path"].as_str().unwrap_or("/mcp");
        if method == "POST" {
            let mut c = Vec::new();
            for (k, v) in &headers {
                if k.to_ascii_lowercase().starts_with("mcp")
                    || k.eq_ignore_ascii_case("last-event-id")
                {
                    c.extend_from_slice(format!("{k}: {v}\n").as_bytes());
                }
            }
            c.extend_from_slice(b"\n");
            c.extend_from_slice(&body);
            let sel = if f.get("setup").and_then(|s| s.get("session")).is_some() {
                2
            } else {
                0
            };
            core.with_sel(sel, &c);
            if let Ok(b) = serde_json::from_slice::<Value>(&body) {
                if let (Some(m), Some(p)) = (b["method"].as_str(), b.get("params")) {
                    let mut h = format!("{m}\n").into_bytes();
                    h.extend_from_slice(&c[..c.len() - body.len()]);
                    h.extend_from_slice(p.to_string().as_bytes());
                    hdrs.put(h);
                }
            }
        }
        let mut raw = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
        let mut has_host = false;
        for (k, v) in &headers {
            has_host |= k.eq_ignore_ascii_case("host");
            raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if !has_host {
            raw.extend_from_slice(b"Host: localhost:3000\r\n");
        }
        if !body.is_empty() {
            raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&body);
        http.put(&raw);
        noauth.put(&raw);
    }
    // Initialize-era flows on the harness's session, pipelined, and a chunked body.
    let legacy = |body: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost:3000\r\nAuthorization: Bearer $TOKEN\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: $SESSION\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let flows = [
        legacy(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            + &legacy(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"chatty","_meta":{"progressToken":"p"}}}"#),
        legacy(r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"test://template/7/data"}}"#)
            + &legacy(r#"{"jsonrpc":"2.0","id":4,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"name","value":"a"}}}"#),
        legacy(r#"{"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{"uri":"test://static"}}"#)
            + &legacy(r#"{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"debug"}}"#),
        legacy(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"closer"}}"#)
            + "GET /mcp HTTP/1.1\r\nHost: localhost:3000\r\nAuthorization: Bearer $TOKEN\r\nAccept: text/event-stream\r\nMcp-Session-Id: $SESSION\r\nLast-Event-ID: 1-0\r\n\r\n",
        "DELETE /mcp HTTP/1.1\r\nHost: localhost:3000\r\nAuthorization: Bearer $TOKEN\r\nMcp-Session-Id: $SESSION\r\n\r\n".to_owned(),
        "POST /mcp HTTP/1.1\r\nHost: localhost:3000\r\nAuthorization: Bearer $TOKEN\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[{\"js\r\n0\r\n\r\n".to_owned(),
    ];
    for f in &flows {
        http.put(f);
        noauth.put(f);
    }
    println!(
        "core: {}, http: {}, http_noauth: {}",
        core.n, http.n, noauth.n
    );

    // (d) headers: base64 sentinels, repeated and padded values, x-mcp-header schemas.
    hdrs.put("tools/call\nmcp-method: =?base64?dG9vbHMvY2FsbA==?=\nmcp-name: =?base64?w6lsw6g=?=\n\n{\"name\":\"élè\"}");
    hdrs.put("tools/call\nmcp-method: tools/call\nmcp-name:  x \nmcp-param-region: =?base64?ZXU=?=\nmcp-param-count: 7\n\n{\"name\":\"x\",\"arguments\":{\"region\":\"eu\",\"count\":7},\"_schema\":{\"properties\":{\"region\":{\"type\":\"string\",\"x-mcp-header\":\"Region\"},\"count\":{\"type\":\"integer\",\"x-mcp-header\":\"Count\"}}}}");
    hdrs.put("resources/read\nmcp-protocol-version: 2026-07-28\nmcp-protocol-version: 2026-07-28\nmcp-method: resources/read\n\n{\"uri\":\"a\",\"version\":\"2026-07-28\"}");
    println!("headers: {}", hdrs.n);

    // (e) templates, (f) event ids, (g) settings.
    let mut o = Out::new("template");
    for t in [
        "test://template/{id}/data\ntest://template/a%20b/data",
        "file:///{path}\nfile:///x",
        "a://{x}-{y}-{z}/end\na://1-2-3/end",
        "x://{a}{b}\n",
        "x://{+a}\n",
        "x://{a\n",
        "x://a}b{c}\nx://a}bq",
        "{a}/{a}\nv,w",
    ] {
        o.put(t);
    }
    let mut o = Out::new("event_id");
    for t in [
        "12-3",
        " 0-0 ",
        "18446744073709551615-18446744073709551615",
        "99999999999999999999-1",
        "1-2-3",
        "+1-2",
        "a-1",
    ] {
        o.put(t);
    }
    o.put([0xffu8; 16]);
    let mut o = Out::new("settings");
    for t in [
        "--dev\n--port\n0",
        "--dev\n--host=0.0.0.0",
        "--issuer\nhttps://issuer.example\n--audience=a, b\n--required-scopes\nread write\0VOUCH_LEEWAY_SECS=5\nMCP_MAX_BODY_BYTES=0",
        "--help",
        "--version",
        "--nope",
        "\0PORT=70000\nVOUCH_MCP_LOG=debug\nMCP_SESSION_IDLE_SECS=\nHOST=[::1]",
        "--insecure-skip-audience\n--require-at-jwt=yes\n--log\noff\n--page-size\n18446744073709551616",
    ] {
        o.put(t);
    }
    println!("done");
}
