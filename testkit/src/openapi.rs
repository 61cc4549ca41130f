//! Checks a service's `/openapi.json` against the routes it really serves,
//! and that Swagger UI shows it.

use std::collections::BTreeSet;

use serde_json::Value;

/// The document a running service serves at `{address}/openapi.json`.
pub async fn document(address: &str) -> Value {
    let mut response = awc::Client::default()
        .get(format!("{address}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    response
        .json()
        .limit(1 << 20)
        .await
        .expect("a JSON document")
}

/// Whether the string `schema` of a document allows `text`: its
/// `minLength` and `maxLength` (in characters, as JSON Schema counts them)
/// and its `pattern`. What a schema-driven client may send, the service
/// must take.
pub fn allows_text(schema: &Value, text: &str) -> bool {
    let length = text.chars().count() as u64;
    let pattern = schema["pattern"]
        .as_str()
        .map(|p| regex::Regex::new(p).expect("the document's pattern compiles"));
    schema["minLength"].as_u64().is_none_or(|min| length >= min)
        && schema["maxLength"].as_u64().is_none_or(|max| length <= max)
        && pattern.is_none_or(|p| p.is_match(text))
}

/// Asserts that the document at `{address}/openapi.json` describes exactly
/// `routes` (method, path), and that the running service answers each
/// documented operation from a handler rather than the router's 404 or 405,
/// and serves Swagger UI.
pub async fn assert_describes(address: &str, routes: &[(&str, &str)]) {
    let client = awc::Client::default();
    let swagger = client
        .get(format!("{address}/swagger-ui/"))
        .send()
        .await
        .expect("GET /swagger-ui/");
    assert_eq!(swagger.status().as_u16(), 200, "Swagger UI is served");
    let mut response = client
        .get(format!("{address}/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    let document: Value = response
        .json()
        .limit(1 << 20)
        .await
        .expect("a JSON document");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3"
    );

    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} documents its responses"
            );
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<_> = routes
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, served,
        "the document lists exactly the routes served"
    );

    for (method, path) in &documented {
        let probe = path.replace("{id}", "probe");
        let url = format!("{address}{probe}");
        let mut response = match method.as_str() {
            "GET" => client.get(url).send().await,
            "POST" => {
                client
                    .post(url)
                    .insert_header(("content-type", "application/json"))
                    .send_body("{}")
                    .await
            }
            other => panic!("no probe for {other}"),
        }
        .expect("the probe request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        // A handler's own 404 (no such id) is fine; the router's is not.
        let unrouted = status == 405
            || (status == 404 && body["error"] == platform::http::no_route(method, &probe));
        assert!(
            !unrouted,
            "{method} {path} is documented but not routed: {body}"
        );
    }
}
